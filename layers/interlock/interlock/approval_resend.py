"""An operator's resend of a lost approval email: ``POST /runs/{run_id}/approvals/resend``.

The links' tokens are not kept (only their hashes), so a resend cannot send the same link again: it issues each
approver a **new** link to the same request (the same quorum, deadline and page) and emails it with the request's
own template; the approver's older links stop working from then on (they answer as a link never sent: 404), so an
email that went astray cannot be used once it was replaced. Decisions already made stand: an approver who decided
is not sent a link again.

* Which approvers: the body's ``{"approver": "<address>"}`` (one of those the request asked), or, without it, every
  approver asked who has not decided yet.
* What is refused: a run that does not wait for an approval (``409 not_waiting``), a request made before requests
  named their quorum on the timeline (``409 not_resendable``), a request that ended or whose deadline passed
  (``409 expired``), an approver who decided already (``409 already_decided``), an address the request did not ask
  (``400 unknown_approver``).
* The order of the writes: the new link is stored, then emailed, then the older ones are revoked, then the
  timeline says so (a ``retried`` entry of step ``approval``: reason ``approval_resent``, to whom, the email's
  message id, and the IAM principal that asked when there is one). An email that cannot be sent leaves the older
  link working (``503``: try again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from interlock.approvals import ApprovalStatus, ApprovalStore, Mailer, RequestSettings, send_link
from interlock.models import EntryState, RunStatus, TimelineEntry, is_run_id
from interlock.observability import count, logger
from interlock.settings import approver_id
from interlock.timeline import TimelineStore


@dataclass(frozen=True)
class ResendOutcome:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


class ResendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    approver: str | None = Field(default=None, min_length=3, max_length=320)


def _refused(status: int, error: str, message: str) -> ResendOutcome:
    return ResendOutcome(status, {"error": error, "message": message})


def parse_request(body: str | None) -> ResendRequest | ResendOutcome:
    from interlock.http import BodyError, model_body

    try:
        return model_body(body, ResendRequest)
    except BodyError as exc:
        if exc.code == "bad_body":
            return _refused(400, "bad_body", "the body is not JSON")
        return _refused(400, "bad_request", 'a resend takes {"approver": "<an address the request asked>"}, or no '
                                            "body (every approver who has not decided)")


class ApprovalResend:
    def __init__(self, store: ApprovalStore, timeline: TimelineStore, mailer: Mailer,
                 settings: RequestSettings) -> None:
        self.store = store
        self.timeline = timeline
        self.mailer = mailer
        self.settings = settings

    def resend(self, run_id: str, request: ResendRequest, requested_by: str | None = None,
               now: float | None = None) -> ResendOutcome:
        now = time.time() if now is None else now
        if not is_run_id(run_id):
            return _refused(400, "bad_run_id", "a run id is a UUID, as answered when its event was accepted")
        logger.append_keys(correlation_id=run_id)
        view = self.timeline.get(run_id)
        if view is None:
            return _refused(404, "unknown_run", f"no run with id {run_id!r}")
        if view.status is not RunStatus.PENDING_APPROVAL:
            return _refused(409, "not_waiting", f"the run waits for no approval (it is {view.status.value})")
        asked_entry = next((e for e in reversed(view.timeline)
                            if e.state is EntryState.PENDING_APPROVAL and e.step == "approval"), None)
        key = asked_entry.details.get("quorum") if asked_entry else None
        quorum = self.store.quorum(key) if isinstance(key, str) else None
        if asked_entry is None or quorum is None:
            return _refused(409, "not_resendable", "the run's approval was requested before requests could be sent "
                                                   "again: its links stand until its deadline")
        if quorum.status is not ApprovalStatus.PENDING or now >= quorum.deadline:
            return _refused(409, "expired", "the approval request has ended or its deadline passed")
        asked = [a for a in asked_entry.details.get("approvers", []) if isinstance(a, str)]
        if request.approver is not None:
            match = [a for a in asked if approver_id(a) == approver_id(request.approver)]
            if not match:
                return _refused(400, "unknown_approver", "the request did not ask that address; it asked: "
                                                         + ", ".join(asked))
            if quorum.decision_of(match[0]) is not None:
                return _refused(409, "already_decided", "that approver decided already")
            targets = match
        else:
            targets = [a for a in asked if quorum.decision_of(a) is None]
            if not targets:
                return _refused(409, "already_decided", "every approver asked decided already")
        message_ids = []
        for approver in targets:
            try:
                message_ids.append(send_link(self.store, quorum, approver, self.settings, self.mailer, now))
            except Exception:
                logger.exception("could not send the approval email again")
                return _refused(503, "email_unavailable", "the email could not be sent; the older link still "
                                                          "works; try again")
            self.store.reissue(quorum.key, approver, now)
        self.timeline.record(run_id, TimelineEntry(
            state=EntryState.RETRIED, step="approval",
            details={"reason": "approval_resent", "approvers": targets, "email_message_ids": message_ids,
                     **({"requested_by": requested_by} if requested_by else {})}))
        count("ApprovalsResent", len(targets))
        logger.info("approval sent again", extra={"links": len(targets)})
        deadline = datetime.fromtimestamp(quorum.deadline, UTC).isoformat().replace("+00:00", "Z")
        return ResendOutcome(200, {"run_id": run_id, "resent_to": targets, "deadline": deadline,
                                   "email_message_ids": message_ids})
