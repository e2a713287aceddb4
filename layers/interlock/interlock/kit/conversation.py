"""A conversation's state in a workflow's own table: its inbox, its one turn at a time, its history.

A conversational workflow (docs/conversations.md) declares a table with ``partition_key="conversation"`` and
``sort_key="item"``; each conversation (``whatsapp:<phone_number_id>:<wa_id>``, a Slack thread) has:

* ``state``: the open turn's run (``turn_run``) and its claim's expiry, the last inbound message's time by the
  channel's clock (``last_inbound_at``: WhatsApp's 24-hour window), the handoff when handed off;
* ``in#<ms, 16 digits>#<message id>``: a message not yet handled, in the channel's order;
* ``turn#<ms of its first message, 16 digits>#<run id>``: a handled turn (what came in, what the workflow did and sent).

**One turn at a time.** A run appends its message to the inbox, then claims the turn (one conditional write): it
gets the claim when no run holds it (or the holder's claim expired), else it joins the holder's turn. The holder
releases its claim *before* it reads the inbox for messages that came in meanwhile, so every message is handled by
the turn that holds the claim when it reads the inbox, or by the next one: none is lost, none handled twice by
parallel turns. The claim expires after :data:`CLAIM_SECONDS` (longer than an Express execution may run), so a
turn that died leaves the conversation to the next message.

Platform code: it names no workflow and no channel (the keys come from the channel adapters).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from interlock import aws
from interlock.channels import Inbound, MessageKind

# A claim outlives the longest turn: an Express execution is capped at five minutes.
CLAIM_SECONDS = 360
# The most inbound messages one turn handles (a transaction deletes them with the turn's record: at most 100 items).
MAX_TURN_MESSAGES = 50
STATE_SK = "state"
LINK_SK = "link"
SENT = "sent#"
# A delivery status only moves forward (WhatsApp does not promise their order): sent < delivered < read; failed ends.
STATUS_ORDER = {"sent": 1, "delivered": 2, "read": 3, "played": 3, "failed": 4}
INBOX = "in#"
TURN = "turn#"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


@dataclass(frozen=True)
class Waiting:
    """A message in the inbox: its item's sort key (the handled turn deletes it by it) and the message."""

    item: str
    message: Inbound


@dataclass(frozen=True)
class State:
    conversation: str
    turn_run: str | None = None
    claim_expires_at: float | None = None
    last_inbound_at: float | None = None
    handed_off: dict[str, Any] | None = None


@dataclass(frozen=True)
class Turn:
    run_id: str
    at: float
    record: dict[str, Any] = field(default_factory=dict)


def inbox_item(message: Inbound) -> str:
    return f"{INBOX}{round(message.sent_at * 1000):016d}#{message.message_id}"


def _message_attributes(message: Inbound) -> dict[str, Any]:
    item = {"channel": _s(message.channel), "sender": _s(message.sender), "message_id": _s(message.message_id),
            "sent_at": _n(message.sent_at), "kind": _s(message.kind.value), "text": _s(message.text),
            "original_type": _s(message.original_type)}
    if message.reply_id:
        item["reply_id"] = _s(message.reply_id)
    return item


def _inbound(conversation: str, item: dict[str, Any]) -> Inbound:
    return Inbound(channel=item["channel"]["S"], conversation=conversation, sender=item["sender"]["S"],
                   message_id=item["message_id"]["S"], sent_at=float(item["sent_at"]["N"]),
                   kind=MessageKind(item["kind"]["S"]), text=item["text"]["S"],
                   reply_id=item.get("reply_id", {}).get("S"), original_type=item.get("original_type", {}).get("S", ""))


class Conversations(aws.DynamoTable):
    """The conversation table of one workflow (its physical name from ``StepContext.table``)."""

    def __init__(self, table_name: str, client: Any | None = None, clock: Any = time.time) -> None:
        super().__init__(table_name, client)
        self.clock = clock

    def _key(self, conversation: str, item: str) -> dict[str, Any]:
        return {"conversation": _s(conversation), "item": _s(item)}

    def append(self, message: Inbound) -> bool:
        """Put the message in its conversation's inbox; False when it is there already (a redelivery).

        The state's ``last_inbound_at`` moves forward only (a late message never shortens the window)."""
        try:
            self.client.put_item(TableName=self.table_name,
                                 Item={**self._key(message.conversation, inbox_item(message)),
                                       **_message_attributes(message)},
                                 ConditionExpression="attribute_not_exists(#item)",
                                 ExpressionAttributeNames={"#item": "item"})
            added = True
        except self.client.exceptions.ConditionalCheckFailedException:
            added = False
        self._update(message.conversation, UpdateExpression="SET last_inbound_at = :at",
                     ConditionExpression="attribute_not_exists(last_inbound_at) OR last_inbound_at < :at",
                     ExpressionAttributeValues={":at": _n(message.sent_at)})
        return added

    def claim(self, conversation: str, run_id: str) -> str | None:
        """Take the conversation's turn for ``run_id``: None when it has it (again, on a retry), else the run that
        holds it."""
        now = self.clock()
        if self._update(conversation, UpdateExpression="SET turn_run = :run, claim_expires_at = :expires",
                        ConditionExpression="attribute_not_exists(turn_run) OR turn_run = :run"
                                            " OR claim_expires_at < :now",
                        ExpressionAttributeValues={":run": _s(run_id), ":expires": _n(now + CLAIM_SECONDS),
                                                   ":now": _n(now)}):
            return None
        holder = self.state(conversation).turn_run
        # Released between the write and the read: try again rather than report no holder.
        return holder if holder else self.claim(conversation, run_id)

    def release(self, conversation: str, run_id: str) -> list[Waiting]:
        """Give the turn up (only if ``run_id`` holds it), then the messages still waiting: the next turn's."""
        # A failed condition: released already (a retry), or the claim expired and another turn holds it.
        self._update(conversation, UpdateExpression="REMOVE turn_run, claim_expires_at",
                     ConditionExpression="turn_run = :run", ExpressionAttributeValues={":run": _s(run_id)})
        return self.waiting(conversation)

    def waiting(self, conversation: str, limit: int = MAX_TURN_MESSAGES) -> list[Waiting]:
        """The inbox, in the channel's order (its timestamp, then the message id), at most ``limit``."""
        items = self._query(conversation, INBOX, forward=True, limit=limit)
        return [Waiting(item["item"]["S"], _inbound(conversation, item)) for item in items]

    def record_turn(self, conversation: str, run_id: str, handled: list[str], record: dict[str, Any],
                    sent: str | None = None) -> bool:
        """The turn in the history and its messages out of the inbox, in one transaction; False (nothing written)
        when the run's turn is recorded already (a retry). The turn sorts by its first message's time. ``sent``: the
        channel's id of the message the turn sent (``sent#<id>``: its delivery statuses find the turn by it)."""
        first_ms = handled[0][len(INBOX):].split("#", 1)[0] if handled else f"{round(self.clock() * 1000):016d}"
        items: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table_name,
            "Item": {**self._key(conversation, f"{TURN}{first_ms}#{run_id}"), "run_id": _s(run_id),
                     "at": _n(self.clock()), "record": _s(json.dumps(record, separators=(",", ":")))},
            "ConditionExpression": "attribute_not_exists(#item)", "ExpressionAttributeNames": {"#item": "item"}}}]
        items += [{"Delete": {"TableName": self.table_name, "Key": self._key(conversation, sk)}}
                  for sk in handled[:MAX_TURN_MESSAGES]]
        if sent:
            items.append({"Put": {"TableName": self.table_name, "Item": {
                **self._key(conversation, f"{SENT}{sent}"), "run_id": _s(run_id),
                "turn": _s(f"{TURN}{first_ms}#{run_id}"), "at": _n(self.clock())}}})
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if codes[:1] != ["ConditionalCheckFailed"]:
                raise
            return False
        return True

    def history(self, conversation: str, limit: int = 20) -> list[Turn]:
        """The last ``limit`` turns, oldest first."""
        items = self._query(conversation, TURN, forward=False, limit=limit)
        return [Turn(item["run_id"]["S"], float(item["at"]["N"]), json.loads(item["record"]["S"]))
                for item in reversed(items)]

    def state(self, conversation: str) -> State:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(conversation, STATE_SK),
                                    ConsistentRead=True).get("Item") or {}
        handoff = item.get("handed_off", {}).get("S")
        return State(conversation=conversation, turn_run=item.get("turn_run", {}).get("S"),
                     claim_expires_at=float(item["claim_expires_at"]["N"]) if "claim_expires_at" in item else None,
                     last_inbound_at=float(item["last_inbound_at"]["N"]) if "last_inbound_at" in item else None,
                     handed_off=json.loads(handoff) if handoff else None)

    def hand_off(self, conversation: str, handoff: dict[str, Any]) -> bool:
        """Mark the conversation handed off to a person; False when it is already."""
        return self._update(conversation, UpdateExpression="SET handed_off = :h",
                            ConditionExpression="attribute_not_exists(handed_off)",
                            ExpressionAttributeValues={":h": _s(json.dumps(handoff, separators=(",", ":")))})

    def hand_back(self, conversation: str) -> bool:
        """The person gives the conversation back to the workflow; False when it was not handed off."""
        return self._update(conversation, UpdateExpression="REMOVE handed_off",
                            ConditionExpression="attribute_exists(handed_off)")

    def sent_message(self, conversation: str, message_id: str) -> dict[str, Any] | None:
        """The turn that sent ``message_id`` (``run_id``, ``turn``) and its last delivery status, if it did."""
        item = self.client.get_item(TableName=self.table_name, Key=self._key(conversation, f"{SENT}{message_id}"),
                                    ConsistentRead=True).get("Item")
        if not item:
            return None
        return {"run_id": item["run_id"]["S"], "turn": item["turn"]["S"],
                "status": item.get("status", {}).get("S")}

    def record_delivery(self, conversation: str, message_id: str, status: str, at: float) -> bool:
        """The message's delivery status, when it moves the status forward (False: an older or repeated one)."""
        rank = STATUS_ORDER.get(status, 0)
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._key(conversation, f"{SENT}{message_id}"),
                UpdateExpression="SET #status = :status, status_rank = :rank, status_at = :at",
                ConditionExpression="attribute_exists(run_id) AND "
                                    "(attribute_not_exists(status_rank) OR status_rank < :rank)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": _s(status), ":rank": _n(rank), ":at": _n(at)})
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def link(self, alias: str, conversation: str) -> None:
        """Name ``conversation`` by another key too (a support channel's thread about it): :meth:`linked` finds it."""
        self.client.put_item(TableName=self.table_name, Item={**self._key(alias, LINK_SK),
                                                              "target": _s(conversation)})

    def linked(self, alias: str) -> str | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(alias, LINK_SK),
                                    ConsistentRead=True).get("Item") or {}
        return item.get("target", {}).get("S")

    def _update(self, conversation: str, **update: Any) -> bool:
        """A conditional update of the conversation's state; False when its condition failed."""
        try:
            self.client.update_item(TableName=self.table_name, Key=self._key(conversation, STATE_SK), **update)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _query(self, conversation: str, prefix: str, *, forward: bool, limit: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "conversation = :c AND begins_with(#item, :prefix)",
            "ExpressionAttributeNames": {"#item": "item"},
            "ExpressionAttributeValues": {":c": _s(conversation), ":prefix": _s(prefix)},
            "ConsistentRead": True, "ScanIndexForward": forward,
        }
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            page = self.client.query(**kwargs, Limit=limit - len(items))
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items
