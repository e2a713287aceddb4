"""The hand-off email and the page behind its link (:mod:`interlock.handoffs`). Every value shown is HTML-escaped.

The email carries the reason and the link, never the conversation: a customer's words are on the page alone, behind
the token. On the page every message is in a marked block that says whose words they are (the customer's, the
assistant's, a person's), so none can pass for the page's own text or its buttons.
"""

from __future__ import annotations

import secrets
from html import escape
from typing import Any

from interlock.approval_pages import SECURITY_HEADERS as SECURITY_HEADERS
from interlock.approval_pages import html_page, outsider_html, when
from interlock.handoffs import MAX_REPLY_CHARS, LinkStatus, PageView
from interlock.kit.conversation import Turn
from interlock.outgoing import APPROVAL_LINK_HEADER, one_line

REASON_MAX_CHARS = 200


def _who(turn: Turn) -> str:
    return "A person of the business" if turn.record.get("action") == "person_reply" else "The assistant"


def _turn(turn: Turn) -> str:
    record = turn.record
    at = when(turn.at)
    parts = []
    for message in record.get("in") or []:
        if not isinstance(message, dict):
            continue
        said = str(message.get("text") or "") or f"({message.get('kind', 'message')})"
        parts.append(outsider_html(f"The customer wrote ({at}):", said, block=True))
    out = str(record.get("out") or "")
    action = str(record.get("action") or "")
    if out:
        how = " (as the approved template: the 24-hour window was closed)" if record.get("sent_as") == "template" \
            else ""
        parts.append(outsider_html(f"{_who(turn)} replied{how}:", out, block=True))
    elif action == "forwarded":
        parts.append('<p class="who">The assistant stayed silent: the conversation is handed off.</p>')
    elif action == "failed":
        parts.append('<p class="who">This turn failed; nothing was sent.</p>')
    return f'<div class="turn">{"".join(parts)}</div>'


def _conversation(view: PageView) -> str:
    turns = "".join(_turn(t) for t in view.turns) or '<p class="note">No earlier turns.</p>'
    waiting = "".join(outsider_html(f"The customer wrote ({when(w.message.sent_at)}), not answered yet:",
                                    w.message.text or f"({w.message.kind.value})", block=True)
                      for w in view.waiting)
    return f"<h2>The conversation</h2>{turns}{waiting}"


def _facts(view: PageView) -> str:
    link = view.link
    channel = link.conversation.split(":", 1)[0]
    rows = [("Reason", one_line(link.reason, REASON_MAX_CHARS)), ("Channel", channel),
            ("Handed off", when(link.created_at)), ("Link works until", when(link.deadline))]
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows) + "</dl>"


def new_form_id() -> str:
    return secrets.token_urlsafe(18)


def open_page(view: PageView, problem: str | None = None, text: str = "") -> str:
    """The conversation, the reply box (with a fresh one-time form id) and the hand-back button."""
    said = f'<p class="problem">{escape(problem)}</p>' if problem else ""
    forms = (
        f'<h2>Reply to the customer</h2>{said}<form class="reply" method="post">'
        '<input type="hidden" name="action" value="reply">'
        f'<input type="hidden" name="form_id" value="{new_form_id()}">'
        f'<textarea name="text" maxlength="{MAX_REPLY_CHARS}" required>{escape(text)}</textarea>'
        '<p><button class="approve" type="submit">Send to the customer</button></p></form>'
        '<form method="post"><input type="hidden" name="action" value="hand_back">'
        '<button type="submit">Hand back to the assistant</button></form>'
    )
    return html_page("A conversation for you", _facts(view) + _conversation(view) + forms +
                     '<p class="note">Opening or reloading this page changes nothing, and shows new messages; '
                     "each button acts once. While the conversation is yours the assistant stays silent.</p>")


def ended(view: PageView) -> str:
    return html_page("Handed back", "<p>This conversation is no longer handed off to you (it was handed back to "
                                    "the assistant), so this link no longer works. Nothing was changed.</p>")


def expired() -> str:
    return html_page("This link has expired", "<p>The hand-off link's time is over. Nothing was changed.</p>")


def unknown() -> str:
    return html_page("Unknown link", "<p>This hand-off link is not valid. Check that you copied the whole link.</p>")


def unavailable() -> str:
    return html_page("Please try again", "<p>That could not be done just now, so nothing was changed. Go back and "
                                         "press the button again in a moment.</p>")


def bad_form() -> str:
    return html_page("Nothing done", "<p>Use the reply box or the hand-back button on the hand-off page.</p>")


def sent(run_id: str) -> str:
    return html_page("Sent to the customer",
                     f"<p>Your reply is on its way through the conversation's channel (run {escape(run_id)}). "
                     'It appears in the conversation once sent.</p><p><a href="">Back to the conversation</a></p>')


def handed_back(run_id: str) -> str:
    return html_page("Handed back",
                     f"<p>The assistant answers the customer's next message again (run {escape(run_id)}). This "
                     "link no longer works.</p>")


def shown(view: PageView) -> tuple[int, str]:
    """The answer to a GET: the open page, or why the link no longer works."""
    if view.status is LinkStatus.ENDED:
        return 410, ended(view)
    if view.status is LinkStatus.EXPIRED:
        return 410, expired()
    return 200, open_page(view)


def email(reason: str, link: str, deadline: float, run_id: str) -> tuple[str, str, str, dict[str, Any]]:
    """The hand-off email: subject, text part, HTML part, headers. The link comes first; the customer's words are not
    in it (they are on the page)."""
    why = one_line(reason, REASON_MAX_CHARS)
    text = (f"A customer's conversation was handed to you (reason: {why}).\n\n"
            f"Read it, reply and hand it back here (the link works until {when(deadline)}, or until the conversation "
            f"is handed back):\n{link}\n\nThis link is the only one in this email from Interlock. Do not forward it: "
            f"whoever holds it can answer the customer.\n\nRun: {run_id}\n")
    html = html_page("A conversation for you",
                     f'<p class="cta"><a href="{escape(link)}">Open the conversation</a></p>'
                     f"<p>A customer's conversation was handed to you (reason: {escape(why)}). The link works until "
                     f"{escape(when(deadline))}, or until the conversation is handed back. Do not forward it: "
                     "whoever holds it can answer the customer.</p>")
    return "A conversation was handed to you", text, html, {APPROVAL_LINK_HEADER: link}
