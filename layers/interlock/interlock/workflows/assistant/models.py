"""The assistant's data between its steps: the turn's messages, the decision and the reply, what went out.

Each model is one boundary of a step (one pydantic model in, one out). The conversation key and the customer's
words travel in the execution's state (the steps need them); the timeline's summaries leave them out
(:mod:`interlock.workflows.assistant.steps`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interlock.models import Envelope
from interlock.steps import StepInput

Action = Literal["reply", "ask_clarification", "look_up_order", "create_task", "hand_off_to_human", "forwarded"]
Team = Literal["support", "billing", "engineering"]


class ReceiveInput(StepInput):
    envelope: Envelope


class Received(BaseModel):
    """What receive did with the event: a turn this run holds, a message that joined another run's turn, or an
    event that is no message to answer (with the adapter's code)."""

    outcome: Literal["turn", "joined", "ignored", "relay", "hand_back", "status"]
    conversation: str = ""
    channel: str = ""
    reason: str | None = None
    turn_run: str | None = None  # joined: the run whose turn the message joined
    debounce_seconds: int = 0
    # relay and hand_back: a person in the support channel's thread about the conversation (handoff.py), or on the
    # hand-off page (interlock.handoffs)
    via: Literal["slack_thread", "page"] | None = None
    person: str | None = None  # their Slack user id; on the page, the address its link was sent to
    words: str = ""  # what they wrote, for the customer
    thread: SupportThread | None = None
    delivery: Delivery | None = None  # status: what the channel says became of a message a turn sent (turn_run)


class Delivery(BaseModel):
    message_id: str
    status: str
    at: float
    error_code: int | None = None
    window_closed: bool = False  # failed because the 24-hour window had closed (WhatsApp's 131047)


class SupportThread(BaseModel):
    channel: str
    ts: str


class Message(BaseModel):
    item: str  # its inbox item (the store step deletes it by it)
    kind: str
    text: str
    reply_id: str | None = None
    sent_at: float


class Earlier(BaseModel):
    at: str  # ISO time of the turn
    text: str  # one line: what the customer wrote, what the assistant did and said


class CollectInput(StepInput):
    received: Received


class Collected(BaseModel):
    conversation: str
    channel: str
    sender: str = ""
    messages: list[Message] = Field(default_factory=list)
    history: list[Earlier] = Field(default_factory=list)  # earlier turns, oldest first
    last_inbound_at: float | None = None
    handed_off: bool = False
    expecting: str | None = None  # what the last turn asked the customer for (rules.EXPECTS)
    handoff_thread: SupportThread | None = None  # handed off: the support channel's thread about it
    empty: bool = False  # no message waits: an earlier turn took them


class Button(BaseModel):
    id: str
    title: str


class Reply(BaseModel):
    """What the turn does next and, for the actions that answer at once, the words that go out (a vetted template,
    or the model's text that passed the guardrail)."""

    action: Action
    text: str = ""
    buttons: list[Button] = Field(default_factory=list)
    vetted: bool = True  # a template of rules.py (False: the model's text, checked by the guardrail)
    order_number: str | None = None
    task_title: str | None = None
    task_team: Team | None = None
    handoff_reason: str | None = None
    decided_by: str = "rules"
    confidence: float | None = None
    guardrail: list[str] = Field(default_factory=list)  # what the model's text tripped (then a template went out)
    task_id: str | None = None
    expects: str | None = None  # what the vetted question asked for (the next turn's request says so)
    support_post: str | None = None  # a hand-off's post in the support channel (its Slack ts)
    handoff_email: str | None = None  # a hand-off's email with the page's link (its SES message id)
    decision: dict[str, Any] | None = None


class DecideInput(StepInput):
    collected: Collected


class OrderFacts(BaseModel):
    """What the order connector said, as much as the customer may be told: never the address or the phone."""

    number: str = ""
    found: bool
    status: str | None = None
    placed_on: str | None = None
    shipped_on: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    items: int | None = None
    partial: bool = False  # the connector was not reachable or not configured
    reason: str | None = None
    error: dict[str, Any] | None = None  # the lookup's error, when the state machine caught one


class ActInput(StepInput):
    collected: Collected
    decided: Reply


class AnswerInput(ActInput):
    order: OrderFacts


class HandOffInput(StepInput):
    collected: Collected
    decided: Reply | None = None
    reason: str | None = None  # set by the state machine when an action failed (then ``decided`` is not)
    error: dict[str, Any] | None = None


class TaskCreated(BaseModel):
    task_id: str


class Emailed(BaseModel):
    message_id: str  # what SES answered (never the link: it is a credential)


class Posted(BaseModel):
    ts: str | None = None  # the support channel's message, when one was posted
    channel: str | None = None  # the channel's id, as Slack answered (the setting may name it #name)


class PersonInput(StepInput):
    received: Received


class Relayed(BaseModel):
    message_id: str
    sent_as: str
    window_closed: bool  # the template went instead of the person's words (they are told in the thread)


class Delivered(BaseModel):
    recorded: bool  # False: an older or repeated status (statuses only move forward)
    resend: bool = False  # the template goes next (the message failed because the window had closed)


class ReengageInput(StepInput):
    received: Received


class HandedBack(BaseModel):
    handed_back: bool  # False: it was not handed off (handed back already)


class SentReply(BaseModel):
    skipped: bool = False  # nothing went out (handed off: the person answers)
    message_id: str | None = None
    sent_as: str | None = None
    channel: str | None = None


class SendInput(StepInput):
    collected: Collected
    reply: Reply


class StoreInput(SendInput):
    sent: SentReply


class Stored(BaseModel):
    recorded: bool  # False: the turn was recorded already (a repeated step)
    messages: int


class ReleaseInput(StepInput):
    received: Received


class Released(BaseModel):
    waiting: int  # messages that came in during the turn
    next_turn_run: str | None = None


class FailInput(StepInput):
    turn: dict[str, Any]  # the execution's whole state when a step failed


class FailedTurn(BaseModel):
    recorded: bool
    messages: int
    next_turn_run: str | None = None
