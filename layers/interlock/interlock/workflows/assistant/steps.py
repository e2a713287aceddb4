"""The assistant's steps: one turn of a conversation, ``def step(data: <StepInput>, ctx: StepContext) -> <model>``.

The automatic path (Express, ``automatic.asl.json``; docs/conversations.md, A turn step by step):
receive (validate: the adapter reads the message, the inbox takes it, the run claims the turn or joins the holder's)
-> the debounce Wait -> collect (query: the waiting messages in the channel's order, the history) -> decide (decide:
an action of the allowlist; the guardrail over the model's words) -> look_up_order (query) and answer (decide) |
create_task (act, once) | hand_off (notify: the support channel, once) -> send (notify: the channel adapter, once)
-> store (validate: the turn into the history, its messages out of the inbox) -> release (act: the claim given up,
then a next turn for what came in meanwhile). While handed off: forward (notify) instead of deciding. Beside the turns:
relay and hand_back (a person in the support thread), delivery and reengage (a sent message's status).

The timeline keeps what each step did, never the conversation's key (a phone number) nor anybody's words.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from interlock import channels
from interlock.errors import MissingData, parse_cause
from interlock.kit.context import StepContext  # at run time: the worker resolves the steps' annotations
from interlock.kit.conversation import Conversations, Turn
from interlock.models import EntryState, TimelineEntry
from interlock.observability import count
from interlock.outgoing import one_line
from interlock.workflows.assistant import PAGE_HAND_BACK, PAGE_REPLY, handoff, limits, rules
from interlock.workflows.assistant.models import (
    ActInput,
    AnswerInput,
    Collected,
    CollectInput,
    DecideInput,
    Delivered,
    Delivery,
    Earlier,
    Emailed,
    FailedTurn,
    FailInput,
    HandedBack,
    HandOffInput,
    Message,
    OrderFacts,
    PersonInput,
    Posted,
    Received,
    ReceiveInput,
    ReengageInput,
    Relayed,
    Released,
    ReleaseInput,
    Reply,
    SendInput,
    SentReply,
    Stored,
    StoreInput,
    SupportThread,
    TaskCreated,
)

if TYPE_CHECKING:
    from interlock.connectors.erp import Erp
    from interlock.connectors.helpdesk import Helpdesk
    from interlock.connectors.slack import Slack

TABLE = "conversations"
NEXT_TURN = "next_turn"
# What one turn puts in front of the model: the waiting messages' words, at most this many characters (the rest wait
# for the next turn).
TURN_TEXT_CHARS = 16_000
# Channels whose people are customers: an order's facts go only to the customer who placed it. (A Slack workspace is
# the business's own people.)
CUSTOMER_CHANNELS = frozenset({"whatsapp"})


def _store(ctx: StepContext) -> Conversations:
    return Conversations(ctx.table(TABLE))


def ref(conversation: str) -> str:
    """A conversation's name on the timeline: its channel and a digest, never its key (a phone number)."""
    digest = hashlib.sha256(conversation.encode()).hexdigest()[:16]
    return f"{channels.channel_of(conversation)}:{digest}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


# -- 1 receive (validate) -------------------------------------------------------------------------------------------


def receive(data: ReceiveInput, ctx: StepContext) -> Received:
    """The message into its conversation's inbox, then the turn claimed; records its own entry: ``processing`` (the
    run holds the turn), ``completed`` (``joined_turn``: another run's turn takes the message) or ``ignored`` (the
    adapter's code: a bot's own post, an edit, a message in a channel the app was not asked in). Two other events
    take no turn: a delivery status of a message a turn sent (``status``: :func:`delivery`), and a person's reply or
    hand-back in the support thread of a handed-off conversation (``relay``, ``hand_back``: handoff.py)."""
    from interlock.kit.registry import FOLLOW_UP_SOURCE

    envelope = data.envelope
    store = _store(ctx)
    kind = None
    if envelope.source == FOLLOW_UP_SOURCE:  # the next turn (started by the release of the last one), or the page's
        given = envelope.payload.get("data") or {}
        conversation = str(given.get("conversation", ""))
        if channels.channel_of(conversation) not in channels.ADAPTERS:
            return _received(ctx, data, Received(outcome="ignored", reason="no_conversation"))
        if envelope.payload.get("follow_up") in (PAGE_REPLY, PAGE_HAND_BACK):
            return _received(ctx, data, _from_page(store, str(envelope.payload["follow_up"]), conversation, given))
    else:
        try:
            delivery = channels.status(envelope.source, envelope.type, envelope.payload)
        except channels.NotAMessage as exc:
            return _received(ctx, data, Received(outcome="ignored", reason=exc.code))
        if delivery is not None:
            return _received(ctx, data, _status(store, delivery))
        try:
            message = channels.read(envelope.source, envelope.type, envelope.payload)
        except (channels.NotAMessage, channels.UnknownChannel) as exc:
            person = _person(store, envelope.source, envelope.type, envelope.payload)
            if person is not None:
                return _received(ctx, data, person)
            reason = exc.code if isinstance(exc, channels.NotAMessage) else "no_channel"
            return _received(ctx, data, Received(outcome="ignored", reason=reason))
        store.append(message)
        conversation, kind = message.conversation, message.kind.value
    holder = store.claim(conversation, data.run_id)
    channel = channels.channel_of(conversation)
    if holder is not None:
        return _received(ctx, data, Received(outcome="joined", conversation=conversation, channel=channel,
                                             reason="joined_turn", turn_run=holder), kind)
    debounce = ctx.setting_as("assistant_debounce_seconds",
                              lambda raw: limits.whole_setting("assistant_debounce_seconds", raw))
    return _received(ctx, data, Received(outcome="turn", conversation=conversation, channel=channel,
                                         debounce_seconds=debounce), kind)


def _status(store: Conversations, status: channels.DeliveryStatus) -> Received:
    """A delivery status of a message a turn sent: that turn's run records it (:func:`delivery`)."""
    sent = store.sent_message(status.conversation, status.message_id) if status.conversation else None
    if sent is None:
        return Received(outcome="ignored", reason="not_a_sent_message")
    return Received(outcome="status", conversation=status.conversation,
                    channel=channels.channel_of(status.conversation), turn_run=sent["run_id"],
                    delivery=Delivery(message_id=status.message_id, status=status.status, at=status.at,
                                      error_code=status.error_code, window_closed=status.window_closed))


def _person(store: Conversations, source: str, event_type: str, payload: dict[str, Any]) -> Received | None:
    """A person's reply (or their hand-back) in the support channel's thread about a handed-off conversation."""
    from interlock.channels import slack

    if source != slack.CHANNEL:
        return None
    try:
        reply = slack.thread_reply(event_type, payload)
    except channels.NotAMessage:
        return None
    target = store.linked(handoff.alias_of(reply))
    if target is None or (reply.action is None and not reply.text) or reply.action not in (None, handoff.HAND_BACK):
        return None
    return Received(outcome="hand_back" if reply.action else "relay", conversation=target,
                    channel=channels.channel_of(target), via="slack_thread", person=reply.user, words=reply.text,
                    thread=SupportThread(channel=reply.channel, ts=reply.thread_ts))


def _from_page(store: Conversations, follow_up: str, conversation: str, given: dict[str, Any]) -> Received:
    """A person's reply (or their hand-back) from the hand-off page (interlock.handoffs), while the conversation is
    still handed off."""
    state = store.state(conversation)
    if state.handed_off is None:
        return Received(outcome="ignored", reason="not_handed_off")
    words = str(given.get("text") or "")
    if follow_up == PAGE_REPLY and not words.strip():
        return Received(outcome="ignored", reason="no_words")
    return Received(outcome="relay" if follow_up == PAGE_REPLY else "hand_back", conversation=conversation,
                    channel=channels.channel_of(conversation), via="page", person=str(given.get("by") or ""),
                    words=words if follow_up == PAGE_REPLY else "", thread=_thread_of(state.handed_off))


_RECEIVED_STATE = {"turn": EntryState.PROCESSING, "joined": EntryState.COMPLETED, "ignored": EntryState.IGNORED,
                   "relay": EntryState.PROCESSING, "hand_back": EntryState.PROCESSING,
                   "status": EntryState.PROCESSING}


def _received(ctx: StepContext, data: ReceiveInput, result: Received, kind: str | None = None) -> Received:
    details: dict[str, Any] = {"outcome": result.outcome, "channel": result.channel or None,
                               "conversation_ref": ref(result.conversation) if result.conversation else None,
                               "message_kind": kind}
    if result.reason:
        details["reason"] = result.reason
    if result.turn_run:
        details["turn_run"] = result.turn_run
    if result.outcome == "turn":
        details["debounce_seconds"] = result.debounce_seconds
    if result.person:
        details["person"] = result.person
        details["via"] = result.via
    if result.delivery:
        details["delivery"] = result.delivery.model_dump(exclude={"at"})
    ctx.timeline.record(data.run_id, TimelineEntry(state=_RECEIVED_STATE[result.outcome], step="receive",
                                                   attempt=data.attempt, details=details))
    return result


# -- 3 collect (query) ----------------------------------------------------------------------------------------------


def _earlier(turn: Turn) -> Earlier:
    record = turn.record
    if record.get("action") == "person_reply":  # a person's words from the support thread, not the assistant's
        return Earlier(at=_iso(turn.at), text=one_line(f"a person of the business: {record.get('out', '')}", 1500))
    said = " / ".join(str(m.get("text", "")) or f"({m.get('kind')})" for m in record.get("in", []))
    line = f"customer: {said} | assistant ({record.get('action')}): {record.get('out', '')}"
    return Earlier(at=_iso(turn.at), text=one_line(line, 1500))


def collect(data: CollectInput, ctx: StepContext) -> Collected:
    conversation = data.received.conversation
    store = _store(ctx)
    state = store.state(conversation)
    messages: list[Message] = []
    chars = 0
    inbox = store.waiting(conversation)
    for waiting in inbox:
        chars += len(waiting.message.text)
        if messages and chars > TURN_TEXT_CHARS:
            break  # the rest is the next turn's
        m = waiting.message
        messages.append(Message(item=waiting.item, kind=m.kind.value, text=m.text, reply_id=m.reply_id,
                                sent_at=m.sent_at))
    turns = ctx.setting_as("assistant_history_turns", lambda raw: limits.whole_setting("assistant_history_turns", raw))
    earlier = store.history(conversation, limit=max(turns, 1))
    history = [_earlier(t) for t in earlier][-turns:] if turns else []
    expecting = earlier[-1].record.get("expects") if earlier else None
    sender = inbox[0].message.sender if inbox else ""
    return Collected(conversation=conversation, channel=data.received.channel, sender=sender, messages=messages,
                     history=history, last_inbound_at=state.last_inbound_at, handed_off=state.handed_off is not None,
                     expecting=expecting if isinstance(expecting, str) else None,
                     handoff_thread=_thread_of(state.handed_off), empty=not messages)


def _thread_of(handed_off: dict[str, Any] | None) -> SupportThread | None:
    thread = (handed_off or {}).get("thread") or {}
    return SupportThread(**thread) if thread.get("channel") and thread.get("ts") else None


def collect_summary(result: Collected) -> dict[str, Any]:
    return {"messages": len(result.messages), "kinds": [m.kind for m in result.messages],
            "history_turns": len(result.history), "handed_off": result.handed_off, "expecting": result.expecting,
            "empty": result.empty,
            "window_open": channels.window_open(result.last_inbound_at, time.time())}


# -- 4 decide (decide) ----------------------------------------------------------------------------------------------


def _request(collected: Collected) -> dict[str, Any]:
    return {"channel": collected.channel, "expecting": collected.expecting,
            "messages": [{"kind": m.kind, "text": m.text, "reply_id": m.reply_id} for m in collected.messages]}


def decide(data: DecideInput, ctx: StepContext) -> Reply:
    """The turn's decision point. An answer nobody could give (every tier failed, the budget spent) is the holding
    reply and a hand-off; a valid answer below the threshold is a clarification (a hand-off it asked for stands);
    the model's words pass the guardrail or are not sent."""
    from interlock.ai.context import SessionItem
    from interlock.ai.decision import Escalation
    from interlock.workflows.assistant.decisions import ASSISTANT_TURN

    collected = data.collected
    session = [SessionItem(at=e.at, kind="turn", text=e.text) for e in collected.history]
    decision = _decide_streamed(ctx, ASSISTANT_TURN, data.run_id, data.attempt, _request(collected), session)
    how = {"decided_by": decision.decided_by, "decision": decision.summary()}
    if decision.output is None:
        count("AssistantHandOffs")
        return rules.holding(f"ai_escalated:{decision.escalation.value if decision.escalation else 'unknown'}",
                             **how)
    output = decision.output
    answer = output.action.model_dump()
    if decision.escalation == Escalation.LOW_CONFIDENCE and answer["action"] != "hand_off_to_human":
        reply = rules.clarification("low_confidence")
    else:
        reply = rules.vet(answer, vetted=decision.provider == "offline")
    return reply.model_copy(update={**how, "confidence": output.confidence})


def _decide_streamed(ctx: StepContext, point: Any, run_id: str, attempt: int, request: dict[str, Any],
                     session: Any = ()) -> Any:
    """Decide ``point`` for this step, the model's answer streamed as the step's delta entries while it arrives."""
    from interlock.run_events import DeltaWriter

    streamed = DeltaWriter(ctx.timeline, run_id, ctx.step, point.name, attempt)
    try:
        return ctx.decisions.decide(point, run_id, request, session, ctx.deadline, step=ctx.step, attempt=attempt,
                                    on_delta=streamed)
    finally:
        streamed.flush()


def reply_summary(result: Reply) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude={"text", "task_title"}, exclude_none=True)


# -- 5 act: look_up_order (query) and answer (decide); create_task (act); hand_off (notify) --------------------------


def look_up_order(data: ActInput, ctx: StepContext) -> OrderFacts:
    """The order, as much of it as the customer may be told; an order of another customer is not found."""
    number = data.decided.order_number or ""
    erp: Erp | None = ctx.connector("erp")
    if erp is None:
        return OrderFacts(number=number, found=False, partial=True, reason="erp_not_configured")
    order = erp.get_sales_order(number)
    collected = data.collected
    if order is None or (collected.channel in CUSTOMER_CHANNELS and order.customer_phone != collected.sender):
        return OrderFacts(number=number, found=False)
    return OrderFacts(number=order.number, found=True, status=order.status, placed_on=order.placed_on.isoformat(),
                      shipped_on=order.shipped_on.isoformat() if order.shipped_on else None, carrier=order.carrier,
                      tracking_number=order.tracking_number, items=order.items)


def answer(data: AnswerInput, ctx: StepContext) -> Reply:
    """The answer about the order: the model's words from the facts, checked; else (no model, or words the guardrail
    stops) the vetted text code writes from the same facts."""
    from interlock.guardrail import text_findings
    from interlock.workflows.assistant.decisions import ANSWER_ORDER

    facts = data.order
    if facts.error is not None:  # the lookup failed for good: on the timeline as the step the run went on without
        reason, details = parse_cause(facts.error)
        ctx.timeline.record(data.run_id, TimelineEntry(
            state=EntryState.PROCESSING, step="look_up_order", attempt=data.attempt,
            details={"partial": True, "reason": reason, "continued_without": "look_up_order", **details}))
    request = {"order": rules.order_facts_for_model(facts), **_request(data.collected)}
    decision = _decide_streamed(ctx, ANSWER_ORDER, data.run_id, data.attempt, request)
    how = {"decided_by": decision.decided_by, "decision": decision.summary(), "order_number": facts.number or None}
    output = decision.output
    if output is None or decision.provider == "offline" or decision.escalation is not None:
        return Reply(action="reply", text=rules.order_text(facts), vetted=True, **how)
    findings = text_findings(output.text)
    if findings:
        return Reply(action="reply", text=rules.order_text(facts), vetted=True, guardrail=findings, **how)
    return Reply(action="reply", text=output.text, vetted=False, confidence=output.confidence, **how)


def create_task(data: ActInput, ctx: StepContext) -> Reply:
    """The task in the helpdesk, once (the ledger's key is its idempotency key), and the vetted confirmation."""
    from interlock.errors import NotConfigured

    decided, collected = data.decided, data.collected
    helpdesk: Helpdesk | None = ctx.connector("helpdesk")
    if helpdesk is None:
        raise NotConfigured("no helpdesk (helpdesk_base_url)", step="create_task", reason="helpdesk_not_configured")
    team = decided.task_team or "support"
    body = "\n".join(f"[{m.kind}] {m.text}" for m in collected.messages)
    requester = f"{collected.channel}:{collected.sender}"
    created = ctx.once("task", lambda key: TaskCreated(task_id=helpdesk.create_task(
        key, decided.task_title or "Customer request", body, requester, team)), TaskCreated)
    task_id = rules.placeable(created.task_id)
    text = (rules.TASK_CONFIRMATION.format(team=team, task_id=task_id) if task_id else
            rules.TASK_CONFIRMATION_NO_REFERENCE.format(team=team))
    return decided.model_copy(update={"text": text, "vetted": True, "task_id": one_line(created.task_id, 64)})


def _post_to_support(ctx: StepContext, effect: str, text: str, *, thread: SupportThread | None = None,
                     blocks: list[dict[str, Any]] | None = None) -> Posted:
    """A post to the support channel (``assistant_support_channel``; in ``thread`` when given), once; nothing when no
    channel is set."""
    channel = thread.channel if thread else ctx.setting_as("assistant_support_channel", limits.support_channel)
    slack: Slack | None = ctx.connector("slack")
    if channel is None or slack is None:
        return Posted()

    def post(key: str) -> Posted:
        posted = slack.post_message(channel, text, thread_ts=thread.ts if thread else None, blocks=blocks)
        return Posted(ts=posted.ts, channel=posted.channel)

    return ctx.once(effect, post, Posted)


def _lines(collected: Collected) -> list[tuple[str, str]]:
    earlier = [("earlier", e.text) for e in collected.history[-5:]]
    return earlier + [("customer", m.text or f"({m.kind})") for m in collected.messages]


def hand_off(data: HandOffInput, ctx: StepContext) -> Reply:
    """The conversation to a person: marked handed off (the assistant is silent from now on), the support channel
    told with the reason and the conversation, and the customer sent the vetted holding reply."""
    collected = data.collected
    reason = data.reason or (data.decided.handoff_reason if data.decided else None) or "asked"
    if data.error:
        reason = f"{reason}:{parse_cause(data.error)[0]}"
    text = rules.HANDOFF_POST.format(reason=reason, run_id=data.run_id, transcript=rules.transcript(_lines(collected)))
    posted = _post_to_support(ctx, "support_post", text, blocks=handoff.post_blocks(text))
    store = _store(ctx)
    handed: dict[str, Any] = {"reason": reason, "since": time.time(), "run_id": data.run_id}
    if posted.ts and posted.channel:  # the person answers in the post's thread
        store.link(handoff.thread_alias(posted.channel, posted.ts), collected.conversation)
        handed["thread"] = {"channel": posted.channel, "ts": posted.ts}
    store.hand_off(collected.conversation, handed)
    emailed = _email_handoff(ctx, store, collected.conversation, data.run_id, reason)
    count("AssistantHandOffs")
    how = data.decided.model_dump(include={"decided_by", "decision", "confidence"}) if data.decided else {}
    return rules.holding(reason, **how).model_copy(update={"support_post": posted.ts, "handoff_email": emailed})


def _email_handoff(ctx: StepContext, store: Conversations, conversation: str, run_id: str, reason: str) -> str | None:
    """The link to the hand-off page, emailed to ``assistant_handoff_email`` once (none when no address is set, or
    when another run's hand-off holds the conversation: its person has it)."""
    from interlock import handoff_pages
    from interlock.approvals import SesMailer
    from interlock.errors import NotConfigured

    to = ctx.setting_as("assistant_handoff_email", limits.handoff_email)
    if to is None or (store.state(conversation).handed_off or {}).get("run_id") != run_id:
        return None
    ttl = ctx.setting_as("assistant_handoff_ttl_seconds",
                         lambda raw: limits.whole_setting("assistant_handoff_ttl_seconds", raw))
    sender = ctx.setting("sender_email").strip()
    if not sender:
        raise NotConfigured("no sender address (sender_email)", step=ctx.step, reason="sender_not_configured")

    def send(key: str) -> Emailed:
        link = ctx.handoff_link(conversation, to, reason, ttl)
        subject, text, html, headers = handoff_pages.email(reason, link, time.time() + ttl, run_id)
        return Emailed(message_id=SesMailer().send(sender, to, subject, text, html, headers))

    return ctx.once("handoff_email", send, Emailed).message_id


def forward(data: ActInput, ctx: StepContext) -> Reply:
    """While handed off the assistant is silent: the new messages go to the support channel, once."""
    collected = data.collected
    _post_to_support(ctx, "forward_post", rules.FORWARD_POST.format(
        run_id=data.run_id, transcript=rules.transcript([("customer", m.text or f"({m.kind})")
                                                         for m in collected.messages])),
        thread=collected.handoff_thread)
    return Reply(action="forwarded", vetted=True)


# -- 6 send (notify) ------------------------------------------------------------------------------------------------


def send(data: SendInput, ctx: StepContext) -> SentReply:
    """The reply through the conversation's channel, once: text, up to three buttons, or (WhatsApp, the 24-hour
    window closed) the approved re-engagement template."""
    reply, collected = data.reply, data.collected
    outgoing = channels.OutgoingReply(text=reply.text, buttons=tuple((b.id, b.title) for b in reply.buttons))
    return ctx.once("reply", lambda key: _deliver(ctx, collected.conversation, outgoing, collected.last_inbound_at),
                    SentReply)


def _deliver(ctx: StepContext, conversation: str, outgoing: channels.OutgoingReply,
             last_inbound_at: float | None) -> SentReply:
    named = ctx.setting_as("assistant_reengagement_template", limits.template)
    sent = channels.deliver(ctx.connector, conversation, outgoing, last_inbound_at=last_inbound_at, now=time.time(),
                            template=channels.Template(*named) if named else None)
    return SentReply(message_id=sent.message_id, sent_as=sent.sent_as.value, channel=channels.channel_of(conversation))


# -- a person's side of a hand-off (handoff.py) ---------------------------------------------------------------------


def relay(data: PersonInput, ctx: StepContext) -> Relayed:
    """A person's words from the support thread to the customer, once, through the conversation's channel (the
    template instead when WhatsApp's window is closed, and the person told so); a turn in the history."""
    received = data.received
    store = _store(ctx)
    state = store.state(received.conversation)
    sent = ctx.once("relay", lambda key: _deliver(ctx, received.conversation,
                                                  channels.OutgoingReply(text=received.words),
                                                  state.last_inbound_at), SentReply)
    window_closed = sent.sent_as == channels.SentAs.TEMPLATE.value
    if window_closed:
        _post_to_support(ctx, "window_closed_post", handoff.WINDOW_CLOSED_POST, thread=received.thread)
    store.record_turn(received.conversation, data.run_id, [], {
        "in": [], "action": "person_reply", "out": received.words, "by": received.person,
        "sent_as": sent.sent_as, "message_id": sent.message_id},
        sent=sent.message_id if sent.channel == "whatsapp" else None)
    return Relayed(message_id=sent.message_id or "", sent_as=sent.sent_as or "", window_closed=window_closed)


def hand_back(data: PersonInput, ctx: StepContext) -> HandedBack:
    """The person ends the hand-off: the assistant answers the conversation's next message again."""
    received = data.received
    handed_back = _store(ctx).hand_back(received.conversation)
    if handed_back:
        post = (handoff.HANDED_BACK_FROM_PAGE_POST if received.via == "page"
                else handoff.HANDED_BACK_POST.format(user=received.person))
        _post_to_support(ctx, "handed_back_post", post, thread=received.thread)
    return HandedBack(handed_back=handed_back)


# -- delivery statuses: the turn's run records what became of its message -------------------------------------------


def delivery(data: ReengageInput, ctx: StepContext) -> Delivered:
    """The status on the run of the turn that sent the message (and in its conversation's record), when it moves the
    message's status forward; records its own entry (``completed``, or ``processing`` when the template goes next)."""
    received = data.received
    status = received.delivery
    if status is None or received.turn_run is None:
        raise MissingData("no delivery status to record", step="delivery")
    recorded = _store(ctx).record_delivery(received.conversation, status.message_id, status.status, status.at)
    if recorded:
        ctx.timeline.record(received.turn_run, TimelineEntry(
            state=EntryState.PROCESSING, step="delivery", attempt=data.attempt,
            details={"kind": "delivery_status", **status.model_dump(), "status_run": data.run_id}))
    resend = recorded and status.window_closed
    ctx.timeline.record(data.run_id, TimelineEntry(
        state=EntryState.PROCESSING if resend else EntryState.COMPLETED, step="delivery", attempt=data.attempt,
        details={"recorded": recorded, "turn_run": received.turn_run, "status": status.status, "resend": resend}))
    return Delivered(recorded=recorded, resend=resend)


def reengage(data: ReengageInput, ctx: StepContext) -> SentReply:
    """The message failed because the 24-hour window had closed: the approved template instead, once."""
    received = data.received
    sent = ctx.once("reengagement", lambda key: _deliver(ctx, received.conversation,
                                                         channels.OutgoingReply(text=""), None), SentReply)
    if received.turn_run:
        ctx.timeline.record(received.turn_run, TimelineEntry(
            state=EntryState.PROCESSING, step="delivery", attempt=data.attempt,
            details={"kind": "reengagement", "message_id": sent.message_id, "sent_as": sent.sent_as,
                     "status_run": data.run_id}))
    return sent


# -- 7 store (validate) ---------------------------------------------------------------------------------------------


def store(data: StoreInput, ctx: StepContext) -> Stored:
    reply, collected, sent = data.reply, data.collected, data.sent
    record = {"in": [{"kind": m.kind, "text": m.text, "reply_id": m.reply_id} for m in collected.messages],
              "action": reply.action, "out": reply.text, "buttons": [b.id for b in reply.buttons],
              "sent_as": sent.sent_as, "message_id": sent.message_id, "decided_by": reply.decided_by,
              "task_id": reply.task_id, "order_number": reply.order_number, "handoff_reason": reply.handoff_reason,
              "expects": reply.expects}
    recorded = _store(ctx).record_turn(collected.conversation, data.run_id, [m.item for m in collected.messages],
                                       record, sent=sent.message_id if sent.channel == "whatsapp" else None)
    return Stored(recorded=recorded, messages=len(collected.messages))


# -- 8 release (validate) -------------------------------------------------------------------------------------------


def _release(ctx: StepContext, conversation: str) -> tuple[int, str | None]:
    """The claim given up, then a next turn for the messages that came in meanwhile (one run per first message,
    whatever repeats)."""
    waiting = _store(ctx).release(conversation, ctx.run_id)
    if not waiting:
        return 0, None
    key = hashlib.sha256(f"{conversation}\n{waiting[0].item}".encode()).hexdigest()[:40]
    (run,) = ctx.start_runs(NEXT_TURN, [(key, {"conversation": conversation})])
    return len(waiting), run


def release(data: ReleaseInput, ctx: StepContext) -> Released:
    waiting, run = _release(ctx, data.received.conversation)
    return Released(waiting=waiting, next_turn_run=run)


def fail_turn(data: FailInput, ctx: StepContext) -> FailedTurn:
    """A step failed for good: the turn's messages leave the inbox as a failed turn (no next turn takes them again),
    the claim is given up and what came in meanwhile gets its turn; the failure itself is recorded next."""
    received = Received.model_validate(data.turn.get("received") or {"outcome": "ignored"})
    if received.outcome != "turn":
        return FailedTurn(recorded=False, messages=0)
    collected = Collected.model_validate(data.turn["collected"]) if data.turn.get("collected") else None
    recorded = False
    if collected and collected.messages:
        reason, _ = parse_cause(data.turn.get("error"))
        recorded = _store(ctx).record_turn(received.conversation, data.run_id, [m.item for m in collected.messages], {
            "in": [{"kind": m.kind, "text": m.text} for m in collected.messages], "action": "failed",
            "out": "", "reason": reason})
    _, run = _release(ctx, received.conversation)
    return FailedTurn(recorded=recorded, messages=len(collected.messages) if collected else 0, next_turn_run=run)
