"""The assistant end to end through ``interlock run``, over real HTTP: WhatsApp's and Slack's webhooks signed as they
sign them, the local fake Graph API and fake Slack recording what went out, the fake ERP and helpdesk behind the
actions. No model is configured here: the decisions are the assistant's rules (test_assistant_model.py has the model).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.assistant_messages import (
    CUSTOMER,
    new_customer,
    slack_button,
    slack_direct_message,
    slack_mention,
    slack_message_button,
    slack_thread_message,
    slack_ts,
    whatsapp,
    whatsapp_status,
)
from tests.e2e.conftest import Runtime, accepted

SUPPORT_CHANNEL = "C07SUPPORT"
CHANNEL = "C0LAN2Q65"


def message(rt: Runtime, body: bytes) -> str:
    (event,) = accepted(rt.send_as("whatsapp", body))
    return str(event["run_id"])


def steps(run: dict[str, Any]) -> list[str]:
    """The run's steps in order, each once (the decision layer writes several entries for one step)."""
    seen: list[str] = []
    for entry in run["timeline"]:
        if not seen or seen[-1] != entry["step"]:
            seen.append(entry["step"])
    return seen


def output(run: dict[str, Any], step: str) -> dict[str, Any]:
    (entry,) = [e["details"] for e in run["timeline"] if e["step"] == step and "kind" not in e["details"]]
    return dict(entry)


def sent_to(rt: Runtime, wa_id: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """The bodies the fake Graph API took for ``wa_id``, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m["body"] for m in httpx.get(f"{rt.url}/_local/graph/messages", timeout=5).json()["messages"]
                 if m["body"].get("to") == wa_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def slack_posts(rt: Runtime, channel: str, thread: str | None = None) -> list[dict[str, Any]]:
    posts = httpx.get(f"{rt.url}/_local/slack/messages", timeout=5).json()["messages"]
    return [p["body"] for p in posts if p["channel"] == channel and (thread is None or
                                                                     p["body"].get("thread_ts") == thread)]


def conversation_items(rt: Runtime, wa_id: str) -> list[dict[str, Any]]:
    items = httpx.get(f"{rt.url}/_local/tables/conversations/items", timeout=5).json()["items"]
    return [i for i in items if i["conversation"].endswith(f":{wa_id}")]


def test_given_an_order_question_then_the_eight_steps_answer_it_from_the_order_system(runtime: Runtime) -> None:
    rt = runtime
    run_id = message(rt, whatsapp("Hi, where is my order SO-10042?", wa_id=CUSTOMER))

    run = rt.wait_status(run_id, "completed")
    assert run["workflow"] == "assistant"
    assert steps(run) == ["ingest", "router", "receive", "collect", "decide", "look_up_order", "answer", "send",
                          "store", "release"]
    assert output(run, "decide")["action"] == "look_up_order"
    assert output(run, "look_up_order")["status"] == "shipped"
    (body,) = sent_to(rt, CUSTOMER, 1)[-1:]
    assert body["type"] == "text"
    assert body["text"]["body"] == "Order SO-10042 shipped on 2026-11-28 with DHL, tracking number JD014600003828."
    assert output(run, "send")["message_id"].startswith("wamid.")
    # The turn is in the history (the next turn's session layer), and its message left the inbox.
    items = conversation_items(rt, CUSTOMER)
    assert not [i for i in items if i["item"].startswith("in#")]
    assert any(i["item"].startswith("turn#") and i["item"].endswith(run_id) for i in items)

    # Another customer's order is not found for this one (its facts never reach the reply)
    other = rt.wait_status(message(rt, whatsapp("and SO-20001?", wa_id=CUSTOMER)), "completed")
    assert output(other, "look_up_order") == {**output(other, "look_up_order"), "found": False, "status": None}
    assert sent_to(rt, CUSTOMER, 2)[-1]["text"]["body"].startswith("I could not find order SO-20001 for you.")
    assert output(other, "collect")["history_turns"] >= 1


def test_given_the_order_system_down_then_the_run_goes_on_partial_and_the_customer_is_told(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id = new_customer()
    assert httpx.post(f"{rt.url}/_local/erp/outage", json={"enabled": True}, timeout=5).status_code == 200
    try:
        run = rt.wait_status(message(rt, whatsapp("status of SO-10043?", wa_id=wa_id)), "completed")
    finally:
        httpx.post(f"{rt.url}/_local/erp/outage", json={"enabled": False}, timeout=5)
    lookups = [(e["state"], e["details"]) for e in run["timeline"] if e["step"] == "look_up_order"]
    assert [state for state, _ in lookups] == ["retried", "retried", "processing"]  # tried again, then went on
    assert lookups[-1][1] == {**lookups[-1][1], "partial": True, "reason": "erp_unavailable",
                              "continued_without": "look_up_order"}
    assert sent_to(rt, wa_id, 1)[-1]["text"]["body"] == (
        "I cannot look orders up just now. A person from our team will pick this up and reply here.")


def test_given_a_burst_of_three_messages_out_of_order_then_one_turn_handles_them_in_whatsapps_order(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id = new_customer()
    now = time.time()
    words = ["My parcel arrived", "and the box is damaged", "the lamp inside is broken too"]
    # Delivered newest first: WhatsApp does not promise the order of its webhooks
    runs = [message(rt, whatsapp(text, wa_id=wa_id, at=now - 3 + i)) for i, text in reversed(list(enumerate(words)))]

    ended = [rt.wait_status(r, "completed") for r in runs]
    turns = [r for r in ended if output(r, "receive")["outcome"] == "turn"]
    joined = [r for r in ended if output(r, "receive")["outcome"] == "joined"]
    assert len(turns) == 1 and len(joined) == 2
    (turn,) = turns
    assert all(output(j, "receive")["turn_run"] == turn["run_id"] for j in joined)
    assert output(turn, "collect")["messages"] == 3
    assert output(turn, "decide")["action"] == "create_task"
    # One reply, and the task's body in WhatsApp's order, not the order of arrival
    (reply,) = sent_to(rt, wa_id, 1)
    assert reply["text"]["body"].startswith("Thanks. I have passed this to our support team (reference task_")
    tasks = httpx.get(f"{rt.url}/_local/helpdesk/tasks", timeout=5).json()["tasks"]
    (task,) = [t for t in tasks if t["requester"] == f"whatsapp:{wa_id}"]
    assert task["body"] == "\n".join(f"[text] {w}" for w in words)
    assert task["team"] == "support" and task["task_id"] in reply["text"]["body"]


def test_given_a_short_message_then_a_clarification_with_buttons_and_the_buttons_answer_leads_to_a_task(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id = new_customer()
    first = rt.wait_status(message(rt, whatsapp("hi", wa_id=wa_id)), "completed")
    assert output(first, "decide")["action"] == "ask_clarification"
    (question,) = sent_to(rt, wa_id, 1)
    assert question["type"] == "interactive"
    buttons = question["interactive"]["action"]["buttons"]
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in buttons] == [
        ("order_status", "Order status"), ("report_problem", "Report a problem"),
        ("talk_to_person", "Talk to a person")]

    # The tapped button comes back as an interactive reply: the next turn's request
    tapped = rt.wait_status(message(rt, whatsapp(wa_id=wa_id, reply=("report_problem", "Report a problem"))),
                            "completed")
    assert output(tapped, "collect")["kinds"] == ["interactive_reply"]
    assert sent_to(rt, wa_id, 2)[-1]["text"]["body"].startswith("I am sorry to hear that. Please describe")

    reported = rt.wait_status(message(rt, whatsapp("I was charged twice on my last invoice", wa_id=wa_id)),
                              "completed")
    assert steps(reported)[-5:] == ["decide", "create_task", "send", "store", "release"]
    assert output(reported, "create_task")["task_team"] == "billing"
    assert "billing team" in sent_to(rt, wa_id, 3)[-1]["text"]["body"]


def test_given_a_request_for_a_person_then_a_hand_off_the_persons_replies_and_the_hand_back(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp("Can I talk to a real person please?", wa_id=wa_id)), "completed")
    assert steps(run)[-5:] == ["decide", "hand_off", "send", "store", "release"]
    assert output(run, "hand_off")["handoff_reason"] == "asked_for_a_person"
    (holding,) = sent_to(rt, wa_id, 1)
    assert holding["text"]["body"] == ("Thanks for your message. A person from our team will pick this up shortly "
                                       "and reply here.")
    (post,) = [p for p in slack_posts(rt, SUPPORT_CHANNEL) if run["run_id"] in p["text"]]
    assert "(asked_for_a_person)" in post["text"] and "customer: Can I talk to a real person please?" in post["text"]

    # While handed off the assistant says nothing; the person is told of the new message
    later = rt.wait_status(message(rt, whatsapp("hello? <@U0ADMIN> <!channel>", wa_id=wa_id)), "completed")
    assert "decide" not in steps(later) and output(later, "forward")["action"] == "forwarded"
    assert len(sent_to(rt, wa_id, 2, timeout=3)) == 1
    (forwarded,) = [p for p in slack_posts(rt, SUPPORT_CHANNEL) if later["run_id"] in p["text"]]
    assert "customer: hello? &lt;@U0ADMIN&gt; &lt;!channel&gt;" in forwarded["text"]  # no mention, no ping
    thread = post_ts(rt, run["run_id"])
    assert forwarded["thread_ts"] == thread  # the person reads the conversation in the hand-off's thread

    # The person answers in the thread: their words go to the customer, once, as a run of their own
    (event,) = accepted(rt.send_as("slack", slack_thread_message("Hi, this is Sam. Your parcel left today.",
                                                                 channel=SUPPORT_CHANNEL, thread_ts=thread)))
    relayed = rt.wait_status(event["run_id"], "completed")
    assert steps(relayed)[-2:] == ["receive", "relay"] and output(relayed, "receive")["person"] == "U07AGENT01"
    assert output(relayed, "relay")["sent_as"] == "text"
    assert sent_to(rt, wa_id, 2)[-1]["text"]["body"] == "Hi, this is Sam. Your parcel left today."

    # The hand-back button: the assistant answers the next message again
    body, clicked = slack_message_button("hand_back:1", channel=SUPPORT_CHANNEL, message_ts=thread)
    assert rt.send_as("slack", body, headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    back = rt.wait_status(clicked, "completed")
    assert output(back, "hand_back")["handed_back"] is True
    assert slack_posts(rt, SUPPORT_CHANNEL, thread=thread)[-1]["text"] == (
        "<@U07AGENT01> handed the conversation back to the assistant.")
    again = rt.wait_status(message(rt, whatsapp("thanks! one more thing", wa_id=wa_id)), "completed")
    assert "decide" in steps(again) and output(again, "collect")["handed_off"] is False
    assert len(sent_to(rt, wa_id, 3)) == 3


def post_ts(rt: Runtime, run_id: str) -> str:
    (post,) = [p for p in httpx.get(f"{rt.url}/_local/slack/messages", timeout=5).json()["messages"]
               if p["channel"] == SUPPORT_CHANNEL and run_id in p["text"] and "needs a person" in p["text"]]
    return str(post["ts"])


def test_given_a_closed_24_hour_window_then_the_approved_template_goes_instead_of_the_reply(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp("hi", wa_id=wa_id, at=time.time() - 25 * 3600)), "completed")
    assert output(run, "collect")["window_open"] is False
    assert output(run, "send")["sent_as"] == "template"
    (body,) = sent_to(rt, wa_id, 1)
    assert body["type"] == "template"
    assert body["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


def test_given_delivery_statuses_then_the_sending_turns_run_records_them_and_a_closed_window_sends_the_template(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id = new_customer()
    turn = rt.wait_status(message(rt, whatsapp("hi", wa_id=wa_id)), "completed")
    wamid = output(turn, "send")["message_id"]
    now = time.time()

    # WhatsApp's statuses, out of order: delivered, then the older sent, then read
    ends = []
    for status, at in (("delivered", now + 1), ("sent", now), ("read", now + 2)):
        (event,) = accepted(rt.send_as("whatsapp", whatsapp_status(wamid, status, wa_id=wa_id, at=at)))
        ends.append(rt.wait_status(event["run_id"], "completed"))
    assert [output(e, "receive")["outcome"] for e in ends] == ["status"] * 3
    assert [output(e, "delivery")["recorded"] for e in ends] == [True, False, True]  # a status only moves forward
    recorded = rt.wait_for(turn["run_id"], lambda r: len([e for e in r["timeline"] if e["step"] == "delivery"]) == 2,
                           what="two delivery statuses")
    assert [e["details"]["status"] for e in recorded["timeline"] if e["step"] == "delivery"] == ["delivered", "read"]
    assert recorded["status"] == "completed"  # the turn's run stays as it ended

    # A message that failed because the 24-hour window had closed: the approved template instead, once
    other = new_customer()
    failed_turn = rt.wait_status(message(rt, whatsapp("hi", wa_id=other)), "completed")
    failed_id = output(failed_turn, "send")["message_id"]
    (event,) = accepted(rt.send_as("whatsapp", whatsapp_status(failed_id, "failed", wa_id=other, error_code=131047)))
    resent = rt.wait_status(event["run_id"], "completed")
    assert steps(resent)[-3:] == ["receive", "delivery", "reengage"]
    assert [b["type"] for b in sent_to(rt, other, 2)] == ["interactive", "template"]
    again = accepted(rt.send_as("whatsapp", whatsapp_status(failed_id, "failed", wa_id=other, error_code=131047)))
    assert again[0]["duplicate"] is True
    assert len(sent_to(rt, other, 3, timeout=3)) == 2

    # A status of a message the assistant did not send is no turn's
    (event,) = accepted(rt.send_as("whatsapp", whatsapp_status("wamid.unknown", "read", wa_id=other)))
    assert output(rt.wait_status(event["run_id"], "ignored"), "receive")["reason"] == "not_a_sent_message"


def test_given_a_mention_in_slack_then_the_assistant_answers_in_its_thread_and_takes_its_buttons(
        runtime: Runtime) -> None:
    rt = runtime
    ts = slack_ts()
    (event,) = accepted(rt.send_as("slack", slack_mention("hi there", ts=ts)))
    first = rt.wait_status(event["run_id"], "completed")
    assert output(first, "receive")["channel"] == "slack"
    (question,) = slack_posts(rt, CHANNEL, thread=ts)
    actions = question["blocks"][1]["elements"]
    assert [a["action_id"] for a in actions] == ["reply:order_status", "reply:report_problem", "reply:talk_to_person"]

    body, run_id = slack_button("order_status", "Order status", channel=CHANNEL, thread_ts=ts)
    assert rt.send_as("slack", body, headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    clicked = rt.wait_status(run_id, "completed")
    assert output(clicked, "collect")["kinds"] == ["interactive_reply"]
    posts = slack_posts(rt, CHANNEL, thread=ts)
    assert [p["text"] for p in posts][-1] == "Sure. What is your order number? It looks like SO-10042."

    # In the same thread, an order number: Slack's people are the business's own, so any order is theirs to see
    (event,) = accepted(rt.send_as("slack", slack_mention("SO-20001", thread_ts=ts)))
    answered = rt.wait_status(event["run_id"], "completed")
    assert output(answered, "look_up_order")["found"] is True
    assert slack_posts(rt, CHANNEL, thread=ts)[-1]["text"].startswith("Order SO-20001 was delivered.")
    assert output(answered, "collect")["history_turns"] == 2


def test_given_a_direct_message_to_the_slack_app_then_the_dm_is_the_conversation(runtime: Runtime) -> None:
    rt = runtime
    dm = "D07ADA0001"
    before = len(slack_posts(rt, dm))
    (event,) = accepted(rt.send_as("slack", slack_direct_message("Where is SO-10043?", channel=dm)))
    run = rt.wait_status(event["run_id"], "completed")
    assert output(run, "receive")["channel"] == "slack" and output(run, "decide")["action"] == "look_up_order"
    (reply,) = slack_posts(rt, dm)[before:]
    assert "thread_ts" not in reply  # a DM outside a thread is answered in the DM
    assert reply["text"] == "Order SO-10043 is being prepared (1 item(s)). It has not shipped yet."


def test_given_slack_events_that_are_no_message_to_the_app_then_they_end_ignored_with_a_reason(
        runtime: Runtime) -> None:
    rt = runtime
    import json

    bot = json.loads(slack_mention("I am the bot"))
    bot["event"]["bot_id"] = "B0INTERLOCK"
    (event,) = accepted(rt.send_as("slack", json.dumps(bot).encode()))
    run = rt.wait_status(event["run_id"], "ignored")
    assert output(run, "receive") == {**output(run, "receive"), "outcome": "ignored", "reason": "not_from_a_person"}


def test_given_interlock_send_text_then_each_send_is_a_new_turn_the_assistant_answers(runtime: Runtime) -> None:
    """What the README's "Try it" does: `interlock send whatsapp --text ...` makes a new message each time."""
    import re
    import subprocess
    import sys

    rt = runtime
    wa_id = new_customer()

    def send(text: str) -> str:
        done = subprocess.run([sys.executable, "-m", "interlock.cli", "send", "whatsapp", "--text", text, "--from",
                               wa_id, "--url", rt.url, "--state-dir", str(rt.state_dir)],
                              capture_output=True, text=True, timeout=60, check=False, env=rt.env)
        assert done.returncode == 0, done.stderr
        (run_id,) = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", done.stdout))
        return str(run_id)

    first = rt.wait_status(send("hi"), "completed")
    second = rt.wait_status(send("I would like to talk to a person"), "completed")
    assert output(first, "decide")["action"] == "ask_clarification"
    assert output(second, "decide")["action"] == "hand_off_to_human"
    assert [b["type"] for b in sent_to(rt, wa_id, 2)] == ["interactive", "text"]
