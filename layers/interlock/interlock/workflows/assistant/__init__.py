"""The assistant: conversations on WhatsApp and Slack, one turn at a time. A message (or a burst of them) -> the
conversation's inbox and its turn -> the debounce -> the waiting messages and the history -> one decision (an action
of the allowlist: reply, ask_clarification, look_up_order, create_task, hand_off_to_human) -> the action -> the reply
through the channel's adapter, once -> the turn in the history -> the next turn for what came in meanwhile.
README.md walks through it; docs/conversations.md is the design. Only :mod:`interlock.kit` is imported here.
"""

from __future__ import annotations

from interlock.kit import DataTable, FollowUp, HandoffPage, Job, Step, Trigger, Workflow

_STEPS = "interlock.workflows.assistant.steps"
_REPLY = f"{_STEPS}:reply_summary"
# The WhatsApp message types the assistant answers (an unsupported one gets the vetted "I can read ..." reply);
# reactions, edits and system messages are not turns.
WHATSAPP_TYPES = ("text", "interactive", "button", "image", "location", "audio", "video", "document", "sticker")

DELIVERY_STATUSES = ("sent", "delivered", "read", "failed")

# The runs the hand-off page starts (interlock.handoffs): a person's reply, the hand-back.
PAGE_REPLY = "page_reply"
PAGE_HAND_BACK = "page_hand_back"

WORKFLOW = Workflow(
    name="assistant",
    description="Conversations on WhatsApp and Slack: one turn at a time, an action from an allowlist, replies once",
    package=__name__,
    triggers=(
        *(Trigger("whatsapp", f"whatsapp.message.{kind}") for kind in WHATSAPP_TYPES),
        # what became of a message a turn sent: recorded on that turn's run (no turn of its own)
        *(Trigger("whatsapp", f"whatsapp.status.{status}") for status in DELIVERY_STATUSES),
        Trigger("slack", "slack.app_mention"),
        Trigger("slack", "slack.message"),  # a direct message to the app (channel chatter is refused by the adapter)
        Trigger("slack", "slack.interaction.block_actions"),  # a click on one of the assistant's buttons
    ),
    steps=(
        Step("receive", Job.VALIDATE, f"{_STEPS}:receive", entry="none"),
        Step("collect", Job.QUERY, f"{_STEPS}:collect", summary=f"{_STEPS}:collect_summary"),
        Step("decide", Job.DECIDE, f"{_STEPS}:decide", summary=_REPLY),
        Step("look_up_order", Job.QUERY, f"{_STEPS}:look_up_order", connectors=("erp",)),
        Step("answer", Job.DECIDE, f"{_STEPS}:answer", summary=_REPLY),
        Step("create_task", Job.ACT, f"{_STEPS}:create_task", summary=_REPLY, connectors=("helpdesk",)),
        Step("hand_off", Job.NOTIFY, f"{_STEPS}:hand_off", summary=_REPLY, connectors=("slack",)),
        Step("forward", Job.NOTIFY, f"{_STEPS}:forward", summary=_REPLY, connectors=("slack",)),
        Step("send", Job.NOTIFY, f"{_STEPS}:send", connectors=("whatsapp", "slack")),
        # the person's side of a hand-off, in the support channel's thread (handoff.py) or on the hand-off page
        # (interlock.handoffs): their words to the customer, and the hand-back
        Step("relay", Job.NOTIFY, f"{_STEPS}:relay", entry="completed", connectors=("whatsapp", "slack")),
        Step("hand_back", Job.NOTIFY, f"{_STEPS}:hand_back", entry="completed", connectors=("slack",)),
        # a delivery status: on the sending turn's run; a failure of the closed window sends the template, once
        Step("delivery", Job.VALIDATE, f"{_STEPS}:delivery", entry="none"),
        Step("reengage", Job.NOTIFY, f"{_STEPS}:reengage", entry="completed", connectors=("whatsapp",)),
        Step("store", Job.VALIDATE, f"{_STEPS}:store"),
        Step("release", Job.ACT, f"{_STEPS}:release", entry="completed", starts=("next_turn",)),
        Step("fail_turn", Job.ACT, f"{_STEPS}:fail_turn", starts=("next_turn",)),
    ),
    # deletes: a turn's messages leave the inbox in the transaction that records the turn
    tables=(DataTable("conversations", partition_key="conversation", sort_key="item", deletes=True),),
    follow_ups=(FollowUp("next_turn", "the conversation's next turn: messages that came in during the last one"),
                FollowUp(PAGE_REPLY, "a person's reply from the hand-off page, to the customer"),
                FollowUp(PAGE_HAND_BACK, "the hand-back from the hand-off page")),
    handoff_page=HandoffPage(table="conversations", reply=PAGE_REPLY, hand_back=PAGE_HAND_BACK),
    automatic="automatic.asl.json",
    settings=("assistant_debounce_seconds", "assistant_history_turns", "assistant_reengagement_template",
              "assistant_support_channel", "assistant_handoff_email", "assistant_handoff_ttl_seconds", "sender_email"),
    settings_check="interlock.workflows.assistant.limits:check_settings",
    run_summary="interlock.workflows.assistant.summary:summary",
)
