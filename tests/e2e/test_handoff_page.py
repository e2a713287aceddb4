"""The hand-off by email, end to end through ``interlock run`` over real HTTP: a WhatsApp customer asks for a person,
the outbox gets the email with the hand-off page's link, the person reads the conversation on the page, replies (the
words go to the customer through the fake Graph API, once, whatever is resubmitted) and hands it back; the link then
no longer works. Adversarial requests to the page answer 4xx and change nothing.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.assistant_messages import new_customer, whatsapp
from tests.e2e.conftest import Runtime
from tests.e2e.test_assistant import message, output, sent_to, steps

PAGE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def handoff_link(rt: Runtime, run_id: str, timeout: float = 20.0) -> tuple[str, str]:
    """The hand-off email's link (its X-Interlock-Approval-Link header) and its text, for the run that handed off."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in rt.emails():
            body = mail.get_body(preferencelist=("plain",))
            text = str(body.get_content()) if body else ""
            if f"Run: {run_id}" in text and "/handoffs/" in text:
                return str(mail["X-Interlock-Approval-Link"]).strip(), text
        time.sleep(0.2)
    raise AssertionError(f"no hand-off email for run {run_id}")


def started(rt: Runtime, run_id: str, status: str = "completed", timeout: float = 30.0) -> dict[str, Any]:
    """The run a page's POST started, once the ingest queue has routed it, then once it is ``status``."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{rt.url}/runs/{run_id}", timeout=5).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    return rt.wait_status(run_id, status)


def form_id(page: str) -> str:
    match = re.search(r'name="form_id" value="([A-Za-z0-9_-]+)"', page)
    assert match, page
    return match.group(1)


def post(link: str, **fields: str) -> httpx.Response:
    return httpx.post(link, data=fields, timeout=15)


def handed_off(rt: Runtime, text: str = "I want to speak to a human") -> tuple[str, str, str, dict[str, Any]]:
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp(text, wa_id=wa_id)), "completed")
    assert "hand_off" in steps(run)
    link, _ = handoff_link(rt, run["run_id"])
    return wa_id, run["run_id"], link, run


def test_given_a_hand_off_then_the_emailed_page_shows_the_conversation_takes_a_reply_once_and_hands_it_back(
        runtime: Runtime) -> None:
    rt = runtime
    wa_id, run_id, link, run = handed_off(rt, "I want to speak to a human <script>alert(1)</script>")
    assert output(run, "hand_off")["handoff_email"]  # SES's message id on the timeline; never the link
    assert "/handoffs/" not in str(run)
    _, text = handoff_link(rt, run_id)
    assert "speak to a human" not in text  # the customer's words are on the page alone
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/handoffs/[A-Za-z0-9_-]{43}", link)

    # HEAD and GET only show; the page escapes the customer's words and says whose they are
    assert httpx.head(link, timeout=10).status_code == 200
    shown = httpx.get(link, timeout=10)
    assert shown.status_code == 200
    assert {k: shown.headers[k] for k in PAGE_HEADERS} == PAGE_HEADERS
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text and "<script>" not in shown.text
    assert "The customer wrote" in shown.text and "asked_for_a_person" in shown.text

    # A reply: sent once through WhatsApp, however often the same form is sent
    form = form_id(shown.text)
    first = post(link, action="reply", form_id=form, text="Hi, this is Sam from support. Your parcel left today.")
    assert first.status_code == 202, first.text
    again = post(link, action="reply", form_id=form, text="Hi, this is Sam from support. Your parcel left today.")
    assert again.status_code == 202
    (relay_run,) = set(re.findall(r"run ([0-9a-f-]{36})", first.text + again.text))
    relayed = started(rt, relay_run)
    assert {"receive", "relay"} <= set(steps(relayed)) and "decide" not in steps(relayed)
    assert output(relayed, "receive")["via"] == "page"
    bodies = sent_to(rt, wa_id, 2)
    assert bodies[-1]["text"]["body"] == "Hi, this is Sam from support. Your parcel left today."
    time.sleep(1)
    assert len(sent_to(rt, wa_id, 3, timeout=1)) == 2  # the holding reply and the person's words: once

    # The page now shows the person's words in the conversation
    assert "A person of the business replied" in httpx.get(link, timeout=10).text

    # Bad forms: a 400 that changes nothing
    assert post(link, action="reply", form_id=form_id(shown.text), text="   ").status_code == 400
    assert post(link, action="reply", form_id="short", text="hello").status_code == 400
    assert post(link, action="reply", form_id=form_id(shown.text), text="x" * 4001).status_code == 400
    assert post(link, action="delete").status_code == 400
    assert httpx.post(link, content=b"\xff\xfe", headers={"content-type": "application/x-www-form-urlencoded"},
                      timeout=10).status_code == 400

    # The hand-back: the link ends, and the assistant answers again
    back = post(link, action="hand_back")
    assert back.status_code == 200, back.text
    (back_run,) = set(re.findall(r"run ([0-9a-f-]{36})", back.text))
    assert output(started(rt, back_run), "hand_back")["handed_back"] is True
    assert httpx.get(link, timeout=10).status_code == 410
    assert post(link, action="hand_back").status_code == 410
    assert post(link, action="reply", form_id=form_id(shown.text), text="too late").status_code == 410
    later = rt.wait_status(message(rt, whatsapp("thanks! where is order SO-10042?", wa_id=wa_id)), "completed")
    assert "decide" in steps(later) and output(later, "collect")["handed_off"] is False

    # The token is a credential: the access log shows /handoffs/… and no log line holds it (the console prints the
    # outbox's link, as it does an approval's: the laptop's inbox)
    token = link.rsplit("/", 1)[1]
    logged = [line for line in rt.log_path.read_text(errors="replace").splitlines() if token in line]
    assert all(line.lstrip().startswith(("http://", "https://")) for line in logged), logged


def test_given_unknown_or_forged_links_then_the_page_answers_404_and_never_5xx(runtime: Runtime) -> None:
    rt = runtime
    for token in ("x" * 43, "A" * 42, "%00" * 10, "..%2f..%2fetc", "a" * 300):
        for method in ("GET", "HEAD", "POST"):
            answer = httpx.request(method, f"{rt.url}/handoffs/{token}", data={"action": "hand_back"}, timeout=10)
            assert 400 <= answer.status_code < 500, (method, token, answer.status_code)


def test_given_a_hand_back_in_slack_then_the_emailed_link_ends_too(runtime: Runtime) -> None:
    from tests.assistant_messages import slack_message_button
    from tests.e2e.test_assistant import SUPPORT_CHANNEL, post_ts

    rt = runtime
    _, run_id, link, _ = handed_off(rt)
    assert httpx.get(link, timeout=10).status_code == 200
    body, clicked = slack_message_button("hand_back:1", channel=SUPPORT_CHANNEL, message_ts=post_ts(rt, run_id))
    assert rt.send_as("slack", body, headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    rt.wait_status(clicked, "completed")
    assert httpx.get(link, timeout=10).status_code == 410
