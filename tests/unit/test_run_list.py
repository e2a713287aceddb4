"""The lists' pieces below the index: a workflow's run summary made safe (and never failing a run), the filters
read from a query string, the cursor bound to its filters."""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from interlock import routing, run_list
from interlock.kit import RunSummary, registry
from interlock.models import Envelope, RunStatus

WORKFLOWS = ("sales_lead", "support_triage")


def envelope() -> Envelope:
    return Envelope(event_id="e1", source="form", type="support.ticket", payload_version="v1",
                    received_at=datetime(2026, 12, 4, tzinfo=UTC), dedupe_key="form:e1",
                    run_id="00000000-0000-5000-8000-000000000001", payload={"data": {"subject": "Hi"}})


def test_given_a_summary_with_control_characters_and_length_when_checked_then_one_trimmed_line() -> None:
    checked = run_list.checked_summary(RunSummary(subject="Refund\n\x1b[2J  now\u202e" + "x" * 500,
                                                  customer="  \x00 "))

    assert checked.subject is not None and checked.subject.startswith("Refund [2J now x")
    assert len(checked.subject) == run_list.MAX_SUMMARY_CHARS and checked.customer is None
    assert run_list.checked_summary({"subject": "not a RunSummary"}) == RunSummary()
    assert run_list.checked_summary(RunSummary(subject=42, customer=["a"])) == RunSummary()  # type: ignore[arg-type]
    assert run_list.search_text(RunSummary(subject="Straße", customer="Ana@X.example")) == "strasse\nana@x.example"
    assert run_list.search_text(RunSummary()) is None


def test_given_a_workflows_summary_function_that_fails_when_a_run_starts_then_it_starts_without_one(
        monkeypatch) -> None:
    workflow = registry.workflow("support_triage")

    def pick(path: str):
        monkeypatch.setattr(registry, "workflow", lambda name: replace(workflow, run_summary=path))

    pick("tests.unit.test_run_list:_raises")
    assert routing.run_summary(envelope(), "support_triage") is None
    pick("tests.unit.test_run_list:_dirty")
    assert routing.run_summary(envelope(), "support_triage") == RunSummary(subject="a b", customer=None)
    monkeypatch.setattr(registry, "workflow", lambda name: replace(workflow, run_summary=None))
    assert routing.run_summary(envelope(), "support_triage") is None


def _raises(envelope: Envelope) -> RunSummary:
    raise KeyError("subject")


def _dirty(envelope: Envelope) -> RunSummary:
    return RunSummary(subject="a\tb", customer="")


def test_given_query_parameters_when_read_then_the_filter_says_the_same() -> None:
    flt = run_list.parse_filter({"status": "failed, escalated,failed", "workflow": "sales_lead", "source": "form",
                                 "since": "2026-12-01", "until": "2026-12-02T10:00:00+01:00", "q": "  Ana   Lima ",
                                 "limit": "7", "order": "oldest"}, WORKFLOWS)

    assert flt.statuses == (RunStatus.FAILED, RunStatus.ESCALATED)
    assert (flt.workflow, flt.source, flt.q, flt.limit, flt.newest_first) == ("sales_lead", "form", "ana lima", 7,
                                                                             False)
    assert flt.low == "2026-12-01T00:00:00.000000Z" and flt.high == "2026-12-02T09:00:00.000000Z"
    default = run_list.parse_filter(None, WORKFLOWS)
    assert default.statuses == tuple(RunStatus) and default.limit == run_list.DEFAULT_LIMIT and default.newest_first


def test_given_a_cursor_when_read_back_then_only_with_the_same_filters_and_untouched() -> None:
    flt = run_list.parse_filter({"status": "failed"}, WORKFLOWS)
    position = run_list.listed_key(datetime(2026, 12, 4, 1, 2, 3, 4, tzinfo=UTC),
                                   "00000000-0000-5000-8000-0000000000ab")
    cursor = run_list.encode_cursor(position, flt)

    assert run_list.decode_cursor(cursor, flt) == position
    assert run_list.decode_cursor(cursor, replace(flt, limit=99)) == position  # the page's size may change
    for other in (replace(flt, statuses=(RunStatus.COMPLETED,)), replace(flt, q="zz"),
                  replace(flt, newest_first=False)):
        with pytest.raises(run_list.BadQuery):
            run_list.decode_cursor(cursor, other)
    data = json.loads(base64.urlsafe_b64decode(cursor + "=="))
    for forged in ({**data, "p": position[:-1] + "g"}, {**data, "p": "9" * 64}, {"p": position}, [position], {}):
        token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        with pytest.raises(run_list.BadQuery):
            run_list.decode_cursor(token, flt)


def test_given_positions_when_bounded_then_just_before_and_just_after_sit_between_neighbours() -> None:
    runs = ["00000000-0000-5000-8000-000000000000", "00000000-0000-5000-8000-00000000000a",
            "00000000-0000-5000-8000-00000000000f", "ffffffff-ffff-5fff-bfff-ffffffffffff"]
    moments = [datetime(2026, 12, 4, 0, 0, s, tzinfo=UTC) for s in (0, 1)]
    positions = sorted(run_list.listed_key(m, r) for m in moments for r in runs)

    for lower, upper in itertools.pairwise(positions):
        assert lower < run_list.just_before(upper) < upper
        assert lower < run_list.just_after(lower) < upper
