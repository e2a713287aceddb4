"""What the operator's commands print (interlock.operator): the golden text of ``show``, tables that fit the terminal,
nothing from the server reaching the terminal raw, SigV4 for API Gateway's URL; and the lists' merge of partitions
(interlock.run_list.read_page) over a fake index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from interlock import operator, run_list
from interlock.models import RunStatus

GOLDEN = Path(__file__).parent / "golden"
RUN = "0b7c9a52-4f1e-5d0a-9c33-2f7f1b6c0e11"

VIEW: dict[str, Any] = {
    "run_id": RUN, "workflow": "support_triage", "status": "failed",
    "created_at": "2026-12-04T02:10:11.000000+00:00", "updated_at": "2026-12-04T02:10:14.250000+00:00",
    "replay_of": None, "replayed_as": "9d2f7a1e-2b3c-5d4e-8f90-a1b2c3d4e5f6",
    "timeline": [
        {"state": "received", "step": "ingest", "attempt": 0, "at": "2026-12-04T02:10:11+00:00",
         "details": {"event_source": "form", "event_type": "support.ticket", "event_id": "msg_1"}},
        {"state": "processing", "step": "router", "attempt": 0, "at": "2026-12-04T02:10:11.100000+00:00",
         "details": {"workflow": "support_triage", "event_type": "support.ticket"}},
        {"state": "processing", "step": "classify", "attempt": 0, "at": "2026-12-04T02:10:11.400000+00:00",
         "details": {"kind": "decision_context", "decision": "classify_ticket", "prompt": "classify_ticket",
                     "prompt_version": "v2", "tokens": {"system": 310, "user": 52},
                     "messages": [{"role": "system", "content": "You classify support tickets."},
                                  {"role": "user", "content": "Refund \u001b[2J please"}]}},
        {"state": "processing", "step": "classify", "attempt": 0, "at": "2026-12-04T02:10:12.900000+00:00",
         "details": {"category": "billing", "confidence": 0.62, "decided_by": "gpt-4o-mini",
                     "escalation": "low_confidence"}},
        {"state": "retried", "step": "fetch_account", "attempt": 1, "at": "2026-12-04T02:10:13.500000+00:00",
         "details": {"reason": "crm_unavailable", "error": "CrmUnavailable"}},
        {"state": "failed", "step": "outcome", "attempt": 0, "at": "2026-12-04T02:10:14.250000+00:00",
         "details": {"reason": "crm_unavailable", "message": "the CRM did not answer\nafter 3 tries",
                     "reasons": ["a", "b"]}},
    ],
}


def test_given_a_run_when_shown_then_one_line_an_entry_as_the_golden_text_says() -> None:
    assert "\n".join(operator.show_lines(VIEW)) + "\n" == (GOLDEN / "show_run.txt").read_text()


def test_given_a_run_when_shown_with_prompts_then_what_the_decision_sent_is_under_its_entry() -> None:
    assert "\n".join(operator.show_lines(VIEW, prompts=True)) + "\n" == (GOLDEN / "show_run_prompts.txt").read_text()


def test_given_values_with_control_characters_when_printed_then_none_reaches_the_terminal() -> None:
    hostile = {**VIEW, "workflow": "x\u001b]0;pwned\u0007", "timeline": [
        {"state": "failed\r", "step": "s\u001b[2J", "at": "bad", "details": {"reason": "\u009b31m", "x": 1}}]}
    runs = [{"run_id": "r\u001b", "status": "failed", "subject": "a\u202eb\u0000c", "created_at": "\u001b[1m"}]
    printed = "\n".join([*operator.show_lines(hostile, prompts=True), *operator.runs_lines(runs, 200),
                         *operator.approvals_lines([{"subject": "\u001bP", "run_id": "\u0007"}], 80)])
    assert not [c for c in printed if not c.isprintable() and c != "\n"]


@pytest.mark.parametrize("columns", [60, 100, 139, 140, 220])
def test_given_a_terminal_width_when_runs_are_listed_then_every_line_fits_and_the_subject_is_cut(columns: int) -> None:
    runs = [{"run_id": RUN, "status": "pending_approval", "workflow": "support_triage", "source": "form",
             "created_at": "2026-12-04T02:10:11.123456Z", "subject": "Refund " * 40, "customer": "ana@example.com"},
            {"run_id": RUN, "status": "failed", "workflow": None, "source": "stripe",
             "created_at": "2026-12-04T02:10:11.123456Z", "subject": None, "event_type": "charge.failed"}]

    lines = operator.runs_lines(runs, columns)

    if columns >= 100:
        assert all(len(line) <= columns for line in lines)
    else:  # the run id stays whole, and the subject keeps 10 characters, even past a narrower terminal
        assert lines[1].split("  ")[3] == "Refund Re…"
    assert lines[1].endswith(RUN) and "…" in lines[1] and "charge.f" in lines[2]
    assert ("CUSTOMER" in lines[0]) is (columns >= 140)
    assert lines[1].startswith(("2026-" if columns >= 110 else "") + "12-04 02:10:11  pending_approval")


def test_given_waits_when_listed_then_ages_and_deadlines_read_as_durations() -> None:
    lines = operator.approvals_lines([
        {"run_id": RUN, "workflow": "sales_lead", "subject": "Acme", "age_seconds": 3900, "seconds_left": 172800,
         "required": 2},
        {"run_id": RUN, "workflow": "support_triage", "subject": "Late", "age_seconds": 59, "seconds_left": -700}], 120)

    assert lines[1].split()[:4] == ["1h", "05m", "2d", "00h"]
    assert lines[2].split()[:4] == ["59s", "overdue", "11m", "support_triage"]


def test_given_api_gateways_url_when_a_request_is_made_then_it_is_signed_with_sigv4(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv(operator.SIGV4_REGION_VARIABLE, raising=False)
    url = operator.OperatorApi("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/").url(
        "/runs", {"status": "failed", "q": "refund order", "cursor": None})

    headers = operator.signed_headers("GET", url, {"Accept": "application/json"})

    assert url == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/runs?status=failed&q=refund%20order"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "session-token" and headers["X-Amz-Date"]
    # The local runtime (and any other URL) goes unsigned, unless a region is named for it.
    assert operator.signed_headers("GET", "http://127.0.0.1:8000/runs") == {}
    monkeypatch.setenv(operator.SIGV4_REGION_VARIABLE, "us-east-2")
    assert "/us-east-2/execute-api/" in operator.signed_headers("GET", "https://ops.example.com/runs")["Authorization"]


def test_given_no_aws_credentials_when_api_gateway_is_called_then_a_clear_error(monkeypatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(operator.OperatorError, match="no AWS credentials"):
        operator.signed_headers("GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/runs")


# -- the merge of the index's partitions (interlock.run_list.read_page) ---------------------------------------


class FakeIndex:
    """Partitions in memory; ``stop_after`` makes a partition stop early (as a spent read budget does)."""

    def __init__(self, partitions: dict[RunStatus, list[str]], stop_after: dict[RunStatus, int] | None = None):
        self.partitions = partitions
        self.stop_after = stop_after or {}

    def read(self, status, low, high, newest_first, flt, want, budget) -> run_list.PartitionRead:
        positions = sorted((p for p in self.partitions.get(status, []) if low <= p <= high), reverse=newest_first)
        cap = min(want, self.stop_after.get(status, len(positions)))
        taken = positions[:cap]
        reached = taken[-1] if len(positions) > cap and taken else None
        return run_list.PartitionRead([run_list.IndexItem(p, status, {}) for p in taken], len(taken), reached)


def _position(minute: int) -> str:
    return run_list.listed_key(datetime(2026, 12, 1, 0, minute, tzinfo=UTC), f"00000000-0000-5000-8000-{minute:012d}")


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_given_partitions_that_stop_early_when_paged_then_every_run_comes_once_in_order(newest_first, limit) -> None:
    failed = [_position(m) for m in (1, 4, 5, 9, 12)]
    done = [_position(m) for m in (2, 3, 6, 7, 8, 10, 11, 13)]
    index = FakeIndex({RunStatus.FAILED: failed, RunStatus.COMPLETED: done},
                      stop_after={RunStatus.COMPLETED: 2, RunStatus.FAILED: 1})
    flt = run_list.RunFilter(statuses=(RunStatus.FAILED, RunStatus.COMPLETED), limit=limit,
                             newest_first=newest_first)

    seen: list[str] = []
    cursor = None
    for _ in range(40):
        page = run_list.read_page(index, flt, cursor)
        assert len(page.items) <= limit
        seen += [i.position for i in page.items]
        cursor = page.cursor
        if cursor is None:
            break

    assert seen == sorted(failed + done, reverse=newest_first)


PLANNED = [
    {"message_id": "m1", "kind": "envelope", "run_id": RUN, "run_status": "received", "verdict": "start",
     "action": "move", "outcome": "starts workflow support_triage", "sent_at": "2026-12-04T02:10:11Z"},
    {"message_id": "m2", "kind": "unknown", "run_id": None, "run_status": None, "verdict": "poison", "action": "keep",
     "outcome": "the message is not JSON \u001b[2J" + "x" * 200, "sent_at": None, "done": "kept"},
]


@pytest.mark.parametrize("columns", [100, 109, 110, 200])
def test_given_dlq_messages_when_listed_then_a_line_each_that_fits_with_the_run_and_what_happens(columns: int) -> None:
    lines = operator.redrive_lines(PLANNED, columns)

    assert all(len(line) <= columns for line in lines)
    assert ("SENT (UTC)" in lines[0]) is (columns >= 110)
    sent = ["12-04", "02:10:11"] if columns >= 110 else []
    assert lines[1].split()[:len(sent) + 5] == [*sent, "envelope", RUN, "received", "start", "move"]
    assert lines[2].split()[:5] == [*(["-"] if sent else []), "unknown", "-", "-", "poison", "kept"][:5]
    assert "kept" in lines[2] and "\u001b" not in lines[2] and lines[2].endswith("…")


def test_given_a_post_to_api_gateway_then_its_body_is_signed_too(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/dlqs/ingest/redrive"

    dry = operator.signed_headers("POST", url, {"Content-Type": "application/json"}, b'{"dry_run": true}')
    real = operator.signed_headers("POST", url, {"Content-Type": "application/json"}, b'{"dry_run": false}')

    assert dry["Authorization"].split("Signature=")[0] == real["Authorization"].split("Signature=")[0]
    assert dry["Authorization"] != real["Authorization"] or dry["X-Amz-Date"] != real["X-Amz-Date"]


def test_given_a_dlq_larger_than_a_batch_when_redriven_with_all_then_batches_until_nothing_moves(
    monkeypatch, capsys
) -> None:
    from interlock import cli

    def batch(moved: list[str], kept: list[str], more: bool) -> dict[str, Any]:
        messages = [{"message_id": m, "kind": "envelope", "verdict": "start", "action": "move", "done": "moved",
                     "outcome": "starts workflow support_triage", "run_id": RUN} for m in moved]
        messages += [{"message_id": k, "kind": "unknown", "verdict": "poison", "action": "keep", "done": "kept",
                      "outcome": "the message is not JSON"} for k in kept]
        return {"dlq": "ingest", "dry_run": False, "depth": 5, "more": more, "messages": messages,
                "moved": len(moved), "removed": 0, "failed": 0}

    answers = [batch(["a", "b"], ["p"], True), batch(["c"], ["p"], True), batch([], ["p"], True)]
    asked: list[tuple[str, dict[str, Any]]] = []

    class Api:
        def __init__(self, base: str) -> None:
            pass

        def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            asked.append((path, body))
            return answers[len(asked) - 1]

    monkeypatch.setattr(operator, "OperatorApi", Api)
    monkeypatch.setenv("COLUMNS", "160")

    assert cli.main(["redrive", "--all", "--limit", "3"]) == 0

    assert asked == [("/dlqs/ingest/redrive", {"dry_run": False, "limit": 3})] * 3  # stops once nothing moved
    out, err = capsys.readouterr()
    assert "... 2 moved, 0 removed so far" in err and "... 3 moved" in err
    rows = [line for line in out.splitlines() if "poison" in line or "start" in line]
    assert len(rows) == 4  # a, b, c once each, and the poison kept once, not three times
    assert "Redriven: 1 kept, 3 moved." in out
