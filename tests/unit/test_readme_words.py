"""A reader of the README (and of ``hack/bench/README.md``) can run what it
says from a fresh shell and place every word: no bare ``python`` before it
says to activate ``.venv``, no paths of another machine, no names of
internal work items."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "hack" / "bench" / "README.md"]
UNPLACEABLE = {
    r"\b[Tt]he seed\b|\bseed's\b|\(seed\)": "an internal name for the first manifests",
    r"\bissue \d+": "a tracker the reader does not have",
    r"\bproject brief\b": "a document the reader does not have",
    r"/tmp/k8s-": "a path on the machine the figures came from",
    r"\b[Rr]ound [12]\b": "a name for an internal iteration",
}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
@pytest.mark.parametrize("pattern", UNPLACEABLE)
def test_no_word_a_reader_cannot_place(doc: Path, pattern: str) -> None:
    found = re.findall(f".*{pattern}.*", doc.read_text())
    assert found == [], f"{UNPLACEABLE[pattern]}: {found}"


def test_the_readme_says_to_activate_the_venv_before_its_first_bare_python() -> None:
    blocks = re.findall(r"^ *```sh\n(.*?)^ *```", (REPO / "README.md").read_text(), flags=re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    first_python = next(i for i, line in enumerate(lines) if re.match(r"python\b", line))
    activate = next(i for i, line in enumerate(lines) if line.startswith(". .venv/bin/activate"))
    assert activate < first_python
    assert (REPO / "hack" / "demo.sh").read_text().count("-m venv") == 1, "demo.sh makes the .venv it names"
