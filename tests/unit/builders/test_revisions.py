"""Templates live in ControllerRevisions, one per generation that served (issue 23, row 4)."""

from __future__ import annotations

import json

from disvc_world import disvc, settle, with_spec

from disvc.builders import history


def _revisions(live: list[dict]) -> dict[int, dict]:
    return {o["revision"]: o for o in live if o["kind"] == "ControllerRevision"}


def test_a_large_template_rolled_out_six_times_keeps_the_status_small_and_five_revisions() -> None:
    big = "x" * (300 * 1024)
    obj, live = settle(disvc(annotations={"version": "v1", "blob": big}))
    for n in range(2, 8):
        obj, live = settle(with_spec(obj, annotations={"version": f"v{n}", "blob": big}), live)
    assert obj["status"]["activeGeneration"] == "v7"
    assert len(json.dumps(obj["status"])) < 10_000  # no template in the status
    assert [e["generation"] for e in obj["status"]["history"]] == ["v3", "v4", "v5", "v6", "v7"]
    assert sorted(_revisions(live)) == [3, 4, 5, 6, 7]  # older ones deleted
    kept = _revisions(live)[7]
    assert kept["metadata"]["name"] == "model-revision-v7"
    assert kept["metadata"]["labels"] == {"disvc": "model"}
    assert kept["metadata"]["ownerReferences"][0]["controller"] is True
    restored = history.rollback(history.resolved(obj, live), "v4")
    assert restored["spec"]["annotations"]["version"] == "v4"


def test_an_entry_of_the_earlier_format_still_rolls_back_and_becomes_a_revision() -> None:
    obj, live = settle(disvc(annotations={"version": "v1"}))
    obj, live = settle(with_spec(obj, annotations={"version": "v2"}), live)
    old_template = history.template_of(live, "v1")
    assert old_template is not None
    # as the previous version wrote it: the template in the entry, no ControllerRevision
    old_status = {
        **obj["status"],
        "history": [{**e, "template": history.template_of(live, e["generation"])} for e in obj["status"]["history"]],
    }
    old_live = [o for o in live if o["kind"] != "ControllerRevision"]
    old_obj = {**obj, "status": old_status}
    assert history.rollback(history.resolved(old_obj, old_live))["spec"]["annotations"] == {"version": "v1"}
    # the controller makes the revisions from the entries, then drops the templates
    obj, live = settle(old_obj, old_live)
    assert sorted(_revisions(live)) == [1, 2]
    assert history.template_of(live, "v1") == old_template
    assert all("template" not in e for e in obj["status"]["history"])
