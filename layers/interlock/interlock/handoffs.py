"""Hand-off pages: a person opens an emailed link to read a handed-off conversation, answer it and hand it back.

A workflow that hands conversations to people declares its page (``kit.HandoffPage``: its conversation table and
the two follow-ups the page starts); a step issues a link with ``ctx.handoff_link(...)`` and emails it. This module
names no workflow: it reads any :mod:`interlock.kit.conversation` table the same way.

* **The link.** 256 random bits (:mod:`interlock.tokens`); only the SHA-256 is stored, as ``HANDOFF#<hash>`` in the
  timeline table, with the workflow, the conversation, the run that handed it off, the person it was sent to and its
  deadline. It works while that hand-off lasts (the conversation's ``handed_off`` names that run) and until its
  deadline, whichever ends first; a hand-back from the page ends it for good (``ended_at``).
* **Show** (``GET``/``HEAD``) reads only: mail scanners prefetch links.
* **Reply** (``POST``) starts the page's ``reply`` follow-up run, keyed by the token and the form's one-time id:
  the same form sent twice (a double click, a browser's resubmission, a retried request) is one run, so one message.
* **Hand back** (``POST``) ends the link (a conditional write: once) and starts the ``hand_back`` follow-up run. When
  the run cannot be queued the link is opened again and nothing changed: the person may try again.

The workflow's steps act on those runs (the words go out through the conversation's channel, once; the hand-off
ends); the page only asks for them, so every message a person sends is a run on a timeline.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from interlock import aws
from interlock.tokens import TOKEN_PATTERN, new_token, token_hash

if TYPE_CHECKING:
    from interlock.kit import HandoffPage, Workflow
    from interlock.kit.conversation import Conversations, State, Turn, Waiting
    from interlock.kit.follow_ups import FollowUpMessage

# The link's record is kept this long after its deadline (then DynamoDB's TTL removes it).
RECORD_RETENTION_SECONDS = 30 * 24 * 3600
# What a person may write in one reply: WhatsApp takes 4,096 characters, and the follow-up run carries it (16 KB).
MAX_REPLY_CHARS = 4000
MAX_REPLY_BYTES = 12_000
# The most turns the page shows (the newest); the conversation table keeps them all.
SHOWN_TURNS = 50
# The form's one-time id: rendered into the page at GET, sent back with the reply.
FORM_ID_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{22,64}\Z")


class LinkStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"  # handed back (from this page, the Slack thread, or a later hand-off took its place)
    EXPIRED = "expired"


class HandoffLink(BaseModel):
    token_hash: str
    workflow: str
    conversation: str
    handoff_run: str  # the run that handed the conversation off (and issued the link)
    person: str  # who the link was sent to
    reason: str
    created_at: float
    deadline: float
    ended_at: float | None = None


def _n(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


class HandoffLinks(aws.DynamoTable):
    """The links (``HANDOFF#<token hash>``, ``#HANDOFF``) in the timeline table."""

    SK = "#HANDOFF"

    def _key(self, hashed: str) -> dict[str, Any]:
        return {"pk": {"S": f"HANDOFF#{hashed}"}, "sk": {"S": self.SK}}

    def put(self, link: HandoffLink) -> None:
        self.client.put_item(TableName=self.table_name, Item={
            **self._key(link.token_hash), "record": {"S": link.model_dump_json(exclude={"ended_at"})},
            "expires_at": _n(int(link.deadline) + RECORD_RETENTION_SECONDS)},
            ConditionExpression="attribute_not_exists(pk)")

    def get(self, hashed: str) -> HandoffLink | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(hashed), ConsistentRead=True).get("Item")
        if not item:
            return None
        link = HandoffLink.model_validate_json(item["record"]["S"])
        if "ended_at" in item:
            link = link.model_copy(update={"ended_at": float(item["ended_at"]["N"])})
        return link

    def end(self, hashed: str, at: float) -> bool:
        """End the link; False when it had ended already."""
        try:
            self.client.update_item(TableName=self.table_name, Key=self._key(hashed),
                                    UpdateExpression="SET ended_at = :at",
                                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(ended_at)",
                                    ExpressionAttributeValues={":at": _n(at)})
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def reopen(self, hashed: str) -> None:
        """Undo :meth:`end` (the hand-back's run could not be queued)."""
        self.client.update_item(TableName=self.table_name, Key=self._key(hashed), UpdateExpression="REMOVE ended_at")


class HandoffIssuer:
    """What a step's ``ctx.handoff_link`` uses: a new link stored, and its URL."""

    def __init__(self, links: HandoffLinks, public_base_url: str, clock: Callable[[], float] = time.time) -> None:
        self.links = links
        self.public_base_url = public_base_url
        self.clock = clock

    def issue(self, workflow: str, conversation: str, handoff_run: str, person: str, reason: str,
              ttl_seconds: int) -> str:
        if not self.public_base_url:
            raise ValueError("no public URL to build the hand-off link on (INTERLOCK_PUBLIC_BASE_URL)")
        token = new_token()
        now = self.clock()
        self.links.put(HandoffLink(token_hash=token_hash(token), workflow=workflow, conversation=conversation,
                                   handoff_run=handoff_run, person=person, reason=reason, created_at=now,
                                   deadline=now + ttl_seconds))
        return link_url(self.public_base_url, token)


def link_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/handoffs/{token}"


# -- the page's use cases ------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    DONE = "done"
    UNKNOWN = "unknown"
    ENDED = "ended"
    EXPIRED = "expired"


@dataclass(frozen=True)
class PageView:
    """What the page shows: the link, whether it still works, and the conversation as it is now."""

    link: HandoffLink
    status: LinkStatus
    turns: list[Turn]
    waiting: list[Waiting]
    state: State | None


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    view: PageView | None = None
    run_id: str | None = None


class HandoffService:
    def __init__(self, links: HandoffLinks, conversations: Callable[[Workflow], Conversations],
                 start: Callable[[list[FollowUpMessage], str], None], clock: Callable[[], float] = time.time) -> None:
        self.links = links
        self.conversations = conversations
        self.start = start
        self.clock = clock

    def _page_of(self, link: HandoffLink) -> tuple[Workflow, HandoffPage] | None:
        from interlock.kit import registry

        try:
            workflow = registry.workflow(link.workflow)
        except KeyError:
            return None
        return (workflow, workflow.handoff_page) if workflow.handoff_page is not None else None

    def _page(self, link: HandoffLink) -> HandoffPage:
        found = self._page_of(link)
        if found is None:
            raise LookupError(f"workflow {link.workflow!r} has no hand-off page")
        return found[1]

    def _find(self, token: str) -> tuple[HandoffLink, Conversations, State, LinkStatus] | None:
        """The link for ``token``, its conversation's store and state, and whether the link still works (reads the
        link and the state only); None when no such link exists (or its workflow no longer has a page)."""
        if not TOKEN_PATTERN.match(token):
            return None
        link = self.links.get(token_hash(token))
        found = self._page_of(link) if link is not None else None
        if link is None or found is None:
            return None
        store = self.conversations(found[0])
        state = store.state(link.conversation)
        handed = state.handed_off or {}
        if link.ended_at is not None or handed.get("run_id") != link.handoff_run:
            status = LinkStatus.ENDED
        elif self.clock() >= link.deadline:
            status = LinkStatus.EXPIRED
        else:
            status = LinkStatus.OPEN
        return link, store, state, status

    def view(self, token: str) -> PageView | None:
        """The page for ``token``, with the conversation as it is now; None when no such link exists."""
        found = self._find(token)
        if found is None:
            return None
        link, store, state, status = found
        return PageView(link=link, status=status, turns=store.history(link.conversation, limit=SHOWN_TURNS),
                        waiting=store.waiting(link.conversation), state=state)

    def _open(self, token: str) -> Result | PageView:
        """The link, when it still works (a page without the conversation: acting on it needs none); else why not."""
        found = self._find(token)
        if found is None:
            return Result(Outcome.UNKNOWN)
        link, _, state, status = found
        view = PageView(link=link, status=status, turns=[], waiting=[], state=state)
        if status is LinkStatus.ENDED:
            return Result(Outcome.ENDED, view)
        if status is LinkStatus.EXPIRED:
            return Result(Outcome.EXPIRED, view)
        return view

    def reply(self, token: str, form_id: str, text: str) -> Result:
        """The person's words to the customer: the page's ``reply`` run, one per form sent."""
        opened = self._open(token)
        if isinstance(opened, Result):
            return opened
        link = opened.link
        page = self._page(link)
        key = "page:" + hashlib.sha256(f"{link.token_hash}\n{form_id}".encode()).hexdigest()[:40]
        run = self._start(link, page.reply, key, {"conversation": link.conversation, "text": text,
                                                  "by": link.person})
        return Result(Outcome.DONE, opened, run)

    def hand_back(self, token: str) -> Result:
        """The hand-off ends: the link is ended (once) and the page's ``hand_back`` run started."""
        opened = self._open(token)
        if isinstance(opened, Result):
            return opened
        link = opened.link
        page = self._page(link)
        if not self.links.end(link.token_hash, self.clock()):
            return Result(Outcome.ENDED, opened)
        try:
            run = self._start(link, page.hand_back, f"page:{link.token_hash[:40]}",
                              {"conversation": link.conversation, "by": link.person})
        except Exception:
            self.links.reopen(link.token_hash)
            raise
        return Result(Outcome.DONE, opened, run)

    def _start(self, link: HandoffLink, follow_up: str, key: str, data: dict[str, Any]) -> str:
        from interlock.kit.follow_ups import follow_up_run_id, messages

        self.start(messages(link.workflow, follow_up, link.handoff_run, [(key, data)], step="handoff_page"),
                   "handoff_page")
        return follow_up_run_id(link.workflow, follow_up, key)


def reply_problem(text: str) -> str | None:
    """Why a reply cannot be sent as written; None when it can."""
    if not text.strip():
        return "Write a reply first."
    if len(text) > MAX_REPLY_CHARS or len(text.encode()) > MAX_REPLY_BYTES:
        return f"A reply is at most {MAX_REPLY_CHARS:,} characters."
    return None
