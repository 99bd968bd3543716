"""The controller image, checked from its Dockerfile (no container engine here).

What an operator relies on: a pinned base, a runtime stage that installs only
the wheels the builder made (nothing fetched at install time, no build tools),
a numeric non-root user matching the Deployment's ``runAsUser``, and an
exec-form entry point that starts ``disvc.controller`` without a shell.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
NONROOT_UID = 65532


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    """Upper-cased: FROM, RUN, COPY, ..."""
    arguments: str
    """Everything after the keyword, continuation lines joined."""


@dataclass(slots=True)
class Stage:
    base: str
    """The FROM image with build ARG defaults substituted."""
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions: comments and parser directives dropped, ``\\`` continuations joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages(text: str) -> list[Stage]:
    build_args: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "ARG" and not result:
            arg, _, default = instruction.arguments.partition("=")
            build_args[arg] = default.strip('"')
        elif instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: build_args.get(m.group(1), m.group(0)), words[0])
            stage_name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base, stage_name))
        else:
            assert result, f"{instruction.keyword} before the first FROM"
            result[-1].instructions.append(instruction)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(dockerfile: list[Stage]) -> Stage:
    return dockerfile[-1]


def pip_commands(stage: Stage, subcommand: str) -> list[list[str]]:
    """Each ``pip <subcommand> ...`` in the stage's RUN lines, as argv (mount flags stripped)."""
    found = []
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;", run.arguments):
            argv = [w for w in shlex.split(command) if not w.startswith("--mount=")]
            for start in range(len(argv)):
                head = argv[start:]
                if head[:2] == ["pip", subcommand] or head[:4] == ["python", "-m", "pip", subcommand]:
                    found.append(head)
    return found


def test_image_is_built_in_two_stages_from_a_pinned_python_slim_base(dockerfile: list[Stage]) -> None:
    assert len(dockerfile) >= 2, "a builder stage and a runtime stage"
    for stage in dockerfile:
        if stage.base in {s.name for s in dockerfile}:
            continue  # FROM an earlier stage
        image, _, tag = stage.base.partition(":")
        assert image == "python"
        # A full patch version and a Debian release: the same tag never moves to
        # another Python or another distribution.
        assert re.fullmatch(r"3\.11\.\d+-slim-\w+", tag), f"base {stage.base!r} is not pinned"


def test_builder_makes_the_project_wheel_without_resolving_dependencies(dockerfile: list[Stage]) -> None:
    builder, runtime = dockerfile[0], dockerfile[-1]
    assert builder is not runtime
    wheels = pip_commands(builder, "wheel")
    assert any("--no-deps" in argv and "." in argv for argv in wheels), "pip wheel --no-deps of the project"
    assert len(wheels) >= 2, "a second pip wheel builds the dependency wheels"


def test_runtime_installs_only_from_the_builders_wheels(runtime: Stage) -> None:
    installs = pip_commands(runtime, "install")
    assert installs, "the runtime stage installs the controller"
    for argv in installs:
        assert "--no-index" in argv, f"runtime pip install reaches an index: {argv}"
        assert any(a.startswith("--find-links") for a in argv), f"runtime pip install has no --find-links: {argv}"
    assert not pip_commands(runtime, "wheel"), "nothing is built in the runtime stage"
    copies = [c.arguments for c in runtime.all("COPY") + runtime.all("ADD")]
    assert all("--from=" in c for c in copies), f"the runtime stage copies source from the context: {copies}"


def test_runtime_runs_as_the_numeric_non_root_user_the_deployment_expects(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert users, "the runtime stage sets USER"
    user, _, group = users[-1].arguments.partition(":")
    # Numeric, so the kubelet can verify runAsNonRoot without /etc/passwd.
    assert user == str(NONROOT_UID)
    assert group in ("", str(NONROOT_UID))
    with (REPO / "config" / "manager" / "manager.yaml").open(encoding="utf-8") as stream:
        deployment = yaml.safe_load(stream)
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == NONROOT_UID


def test_entrypoint_starts_the_controller_module_without_a_shell(runtime: Stage) -> None:
    (entrypoint,) = runtime.all("ENTRYPOINT")
    assert json.loads(entrypoint.arguments) == ["python", "-m", "disvc.controller"], "exec form, no shell"
    for cmd in runtime.all("CMD"):
        assert cmd.arguments.startswith("["), "a shell-form CMD would need /bin/sh"
    assert (REPO / "disvc" / "controller" / "__main__.py").is_file(), "python -m disvc.controller has no __main__"


def test_no_healthcheck_needs_a_shell(runtime: Stage) -> None:
    # Kubernetes ignores HEALTHCHECK; the Deployment probes /healthz and /readyz.
    for check in runtime.all("HEALTHCHECK"):
        assert check.arguments.upper() == "NONE"


# -- .dockerignore ------------------------------------------------------------


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        pattern = pattern.removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        names = parts
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            "/" not in pattern and pattern != "*" and any(fnmatch.fnmatchcase(n, pattern) for n in names)
        ):
            result = not negate
    return result


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize(
    "path",
    ["setup.cfg", "pyproject.toml", "disvc/__init__.py", "disvc/controller/__main__.py", "disvc/py.typed"],
)
def test_build_context_keeps_what_the_wheel_needs(path: str, ignore_patterns: list[str]) -> None:
    assert not ignored(path, ignore_patterns)


@pytest.mark.parametrize(
    "path",
    [".git/config", ".venv/bin/python", "tests/unit/test_dockerfile.py", "config/manager/manager.yaml",
     "disvc/__pycache__/x.cpython-311.pyc", "hack/bench/converge.py"],
)
def test_build_context_leaves_out_everything_else(path: str, ignore_patterns: list[str]) -> None:
    assert ignored(path, ignore_patterns)


def test_the_version_label_is_the_build_arg_checked_against_the_installed_package(runtime: Stage) -> None:
    assert any(arg.arguments == "VERSION" for arg in runtime.all("ARG")), "ARG VERSION without a default"
    labels = " ".join(label.arguments for label in runtime.all("LABEL"))
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    checks = [run.arguments for run in runtime.all("RUN") if "--version" in run.arguments]
    assert checks and 'grep -qxF "disvc-controller ${VERSION:?' in checks[0], "the build refuses a wrong VERSION"
    documented = re.search(r"--build-arg VERSION=\$\((.+?)\)", DOCKERFILE.read_text(encoding="utf-8"))
    assert documented, "the header says how to pass VERSION"

    version = subprocess.run(["sh", "-c", documented.group(1)], cwd=REPO, capture_output=True, text=True, check=True)
    setup = (REPO / "setup.cfg").read_text(encoding="utf-8")
    assert f"version = {version.stdout.strip()}\n" in setup
