"""The assistant's deterministic side: its vetted texts, the offline decision (no model configured), the order
answer code composes, and the guardrail over the model's words.

Every byte the assistant sends is one of these templates, a person's words (a handoff), or the model's text after
:func:`vet` found nothing in it: no amount, no link, no promise (:func:`interlock.guardrail.text_findings`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from interlock.guardrail import text_findings
from interlock.outgoing import one_line
from interlock.workflows.assistant.models import Button, OrderFacts, Reply

HOLDING_REPLY = "Thanks for your message. A person from our team will pick this up shortly and reply here."
CLARIFY_QUESTION = "Sorry, I want to get this right. What can I help you with?"
CLARIFY_BUTTONS = (Button(id="order_status", title="Order status"), Button(id="report_problem",
                   title="Report a problem"), Button(id="talk_to_person", title="Talk to a person"))
UNSUPPORTED_REPLY = "I can read text messages, photo captions and locations. Could you type your question?"
ASK_ORDER_NUMBER = "Sure. What is your order number? It looks like SO-10042."
ASK_PROBLEM = "I am sorry to hear that. Please describe the problem in a message, and I will pass it to our team."
TASK_CONFIRMATION = ("Thanks. I have passed this to our {team} team (reference {task_id}). "
                     "They will reply to you here.")
TASK_CONFIRMATION_NO_REFERENCE = "Thanks. I have passed this to our {team} team. They will reply to you here."
ORDER_NOT_FOUND = ("I could not find order {number} for you. Please check the number, or tap "
                   "'Talk to a person'.")
ORDER_UNAVAILABLE = "I cannot look orders up just now. A person from our team will pick this up and reply here."
ORDER_STATUS = {
    "received": "Order {number} is received and will be prepared soon.",
    "processing": "Order {number} is being prepared ({items} item(s)). It has not shipped yet.",
    "shipped": "Order {number} shipped on {shipped_on} with {carrier}, tracking number {tracking_number}.",
    "delivered": "Order {number} was delivered. It shipped on {shipped_on} with {carrier}.",
    "cancelled": "Order {number} was cancelled.",
}
# The support channel's post when a conversation goes to a person (Slack mrkdwn; the customer's words escaped).
HANDOFF_POST = "A conversation needs a person ({reason}). Run {run_id}.\n{transcript}"
FORWARD_POST = "New message in a handed-off conversation (run {run_id}):\n{transcript}"

# What a vetted question asks for: the next turn's request carries it (``expecting``), so that the answer is read
# as what was asked (a problem's description, an order number).
EXPECTS = {ASK_PROBLEM: "problem_description", ASK_ORDER_NUMBER: "order_number"}

ORDER_NUMBER = re.compile(r"\b(SO-\d{4,8})\b", re.I)
_PERSON = re.compile(r"\b(human|agent|person|someone|somebody|operator|representative|real people)\b", re.I)
_PROBLEM = re.compile(r"\b(broken|problem|issue|bug|error|not working|doesn'?t work|damaged|wrong|missing|complain\w*)"
                      r"\b", re.I)
_BILLING = re.compile(r"\b(invoice|charge[ds]?|payment|billing|vat|tax|refund|receipt)\b", re.I)
OFFLINE_CONFIDENCE = 0.9


def _words(messages: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(str(m.get("text", "")) for m in messages if m.get("kind") != "unsupported")


def offline_turn(request: Mapping[str, Any]) -> dict[str, Any]:
    """The decision without a model, from the request layer alone: a button's meaning, an order number, a person
    asked for, a problem described; anything else is a clarification (never a guess). Every text a template."""
    messages = [m for m in request.get("messages", []) if isinstance(m, Mapping)]
    picked = next((str(m.get("reply_id")) for m in reversed(messages) if m.get("reply_id")), None)
    words = _words(messages)
    order = ORDER_NUMBER.search(words)
    if order:
        return {"action": "look_up_order", "order_number": order.group(1).upper()}
    if picked == "talk_to_person" or _PERSON.search(words):
        return {"action": "hand_off_to_human", "reason": "asked_for_a_person"}
    if picked == "order_status":
        return {"action": "reply", "text": ASK_ORDER_NUMBER}
    if picked == "report_problem":
        return {"action": "reply", "text": ASK_PROBLEM}
    described = request.get("expecting") == "problem_description" and len(words.split()) >= 3
    if described or (_PROBLEM.search(words) and len(words.split()) >= 4):
        team = "billing" if _BILLING.search(words) else "support"
        return {"action": "create_task", "title": one_line(words, 120), "team": team}
    if messages and not words.strip():
        return {"action": "reply", "text": UNSUPPORTED_REPLY}
    return {"action": "ask_clarification", "question": CLARIFY_QUESTION,
            "options": [b.model_dump() for b in CLARIFY_BUTTONS]}


def clarification(reason: str | None = None) -> Reply:
    return Reply(action="ask_clarification", text=CLARIFY_QUESTION, buttons=list(CLARIFY_BUTTONS),
                 guardrail=[reason] if reason else [])


def holding(reason: str, **extra: Any) -> Reply:
    """The hand-off: the vetted holding reply, and the reason a person is asked."""
    return Reply(action="hand_off_to_human", text=HOLDING_REPLY, vetted=True, handoff_reason=reason[:200], **extra)


def vet(answer: Mapping[str, Any], *, vetted: bool) -> Reply:
    """The decided action as the reply the turn goes on with. The model's own words (``vetted`` False) pass the
    guardrail or are not sent: a tripped check is the holding reply and a hand-off."""
    action = str(answer.get("action"))
    if action == "look_up_order":
        return Reply(action="look_up_order", order_number=str(answer["order_number"]).upper())
    if action == "create_task":
        return Reply(action="create_task", task_title=one_line(str(answer["title"]), 120), task_team=answer["team"])
    if action == "hand_off_to_human":
        return holding(one_line(str(answer.get("reason") or "asked"), 200))
    text = str(answer.get("question") if action == "ask_clarification" else answer.get("text") or "").strip()
    buttons = [Button(id=str(o["id"]), title=one_line(str(o["title"]), 20)) for o in answer.get("options") or []][:3]
    if not vetted:
        findings = text_findings(" ".join([text, *(b.title for b in buttons)]))
        if findings:
            return holding(f"guardrail:{findings[0]}", guardrail=findings)
    return Reply(action="ask_clarification" if action == "ask_clarification" else "reply", text=text[:1000],
                 buttons=buttons, vetted=vetted, expects=EXPECTS.get(text) if vetted else None)


def order_text(facts: OrderFacts) -> str:
    """The vetted answer about an order, written by code from the connector's facts."""
    if not facts.found:
        return ORDER_UNAVAILABLE if facts.partial else ORDER_NOT_FOUND.format(number=facts.number)
    template = ORDER_STATUS.get(facts.status or "", "Order {number} is being handled.")
    return template.format(number=facts.number, items=facts.items or 0,
                           shipped_on=facts.shipped_on or "an unknown date",
                           carrier=placeable(facts.carrier, "name") or "the carrier",
                           tracking_number=placeable(facts.tracking_number) or "not known yet")


# What a system of record's value may look like to be placed in a vetted text: a reference, a carrier's name.
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 &.'-]{0,39}$")


def placeable(value: str | None, kind: str = "reference") -> str | None:
    """A system of record's value (a tracking number, a carrier, a task's id) as it may stand in a vetted text: one
    of its plain shape that names no link, amount or promise; else None (the text says it without it)."""
    if value is None:
        return None
    text = one_line(value, 40)
    shape = _REFERENCE if kind == "reference" else _NAME
    return text if shape.fullmatch(text) and not text_findings(text) else None


def order_facts_for_model(facts: OrderFacts) -> dict[str, Any]:
    return facts.model_dump(exclude={"partial", "reason", "error"})


def slack_escaped(text: str) -> str:
    """Outsider words in a Slack post: ``& < >`` escaped, so they cannot mention ``@channel`` or make a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def transcript(lines: Sequence[tuple[str, str]], max_chars: int = 2500) -> str:
    """``who: words`` lines (the customer's escaped), the newest kept when it is long."""
    out = [f"{who}: {slack_escaped(one_line(words, 500))}" for who, words in lines]
    while out and len("\n".join(out)) > max_chars:
        out.pop(0)
    return "\n".join(out)
