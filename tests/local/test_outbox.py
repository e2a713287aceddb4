"""The SES outbox: every raw message sent through moto lands on disk, byte for byte, and is announced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import boto3
import pytest
from interlock.approvals import APPROVAL_LINK_HEADER
from interlock.local.outbox import Outbox, console_safe
from moto import mock_aws


@pytest.fixture
def ses() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("ses", region_name="us-east-1")
        client.verify_email_identity(EmailAddress="interlock@example.com")
        yield client


def _message(subject: str = "Approval needed: refund for Grace",
             text: str = "A run needs you.\n\nOpen https://example.test/approvals/tok_123 to decide.\n",
             link: str | None = "https://example.test/approvals/tok_123") -> bytes:
    message = EmailMessage()
    message["From"] = "interlock@example.com"
    message["To"] = "approver@example.com"
    message["Subject"] = subject
    if link is not None:
        message[APPROVAL_LINK_HEADER] = link
    message.set_content(text)
    message.add_alternative('<p><a href="https://example.test/html-link">decide</a></p>', subtype="html")
    return message.as_bytes()


def test_a_sent_message_is_written_as_eml_and_announced(ses, tmp_path: Path) -> None:
    # Given the outbox and a raw message sent the way the approval step sends it
    announced: list[str] = []
    outbox = Outbox(tmp_path / "outbox", announced.append)
    raw = _message()
    ses.send_raw_email(Source="interlock@example.com", Destinations=["approver@example.com"],
                       RawMessage={"Data": raw})

    # When the outbox polls (twice)
    first = outbox.poll_once()
    second = outbox.poll_once()

    # Then exactly one file holds the exact MIME, and the console got the recipient, subject and link
    assert second == []
    (delivered,) = first
    assert delivered.path.parent == tmp_path / "outbox"
    assert delivered.path.name.endswith(".eml")
    assert delivered.path.read_bytes() == raw
    assert (delivered.to, delivered.link) == ("approver@example.com", "https://example.test/approvals/tok_123")
    assert announced[0].splitlines()[0] == "Approval email to approver@example.com: Approval needed: refund for Grace"
    assert "https://example.test/approvals/tok_123" in announced[0]


def test_stop_delivers_what_was_sent_before_it(ses, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", interval_seconds=60)
    outbox.start()
    ses.send_raw_email(Source="interlock@example.com", Destinations=["a@example.com"], RawMessage={"Data": _message()})

    outbox.stop()

    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_a_forged_link_above_the_real_one_is_not_announced(ses, tmp_path: Path) -> None:
    # Given an approval email whose text quotes a customer's forged link before the real one
    announced: list[str] = []
    outbox = Outbox(tmp_path / "outbox", announced.append)
    text = ("> Review and decide here: http://evil.example/approvals/x\n\n"
            "Review and decide here:\nhttps://example.test/approvals/tok_123\n")
    ses.send_raw_email(Source="interlock@example.com", Destinations=["approver@example.com"],
                       RawMessage={"Data": _message(text=text)})

    # When the outbox polls
    (delivered,) = outbox.poll_once()

    # Then the console names the link the message declares, never the first URL of its text
    assert delivered.link == "https://example.test/approvals/tok_123"
    assert "evil.example" not in announced[0]


def test_a_message_that_names_no_link_of_its_own_is_announced_without_one(ses, tmp_path: Path) -> None:
    announced: list[str] = []
    outbox = Outbox(tmp_path / "outbox", announced.append)
    ses.send_raw_email(Source="interlock@example.com", Destinations=["approver@example.com"],
                       RawMessage={"Data": _message(text="Open http://evil.example/x", link=None)})

    (delivered,) = outbox.poll_once()

    assert delivered.link is None and "evil.example" not in announced[0]


def test_terminal_escapes_in_a_subject_are_shown_escaped_never_raw(ses, tmp_path: Path) -> None:
    # Given a subject carrying a clear-screen sequence and a bidi override (RFC 2047-encoded on the wire)
    announced: list[str] = []
    outbox = Outbox(tmp_path / "outbox", announced.append)
    ses.send_raw_email(Source="interlock@example.com", Destinations=["approver@example.com"],
                       RawMessage={"Data": _message(subject="Approval needed: \x1b[2Jhi \u202eevil")})

    outbox.poll_once()

    assert "\x1b" not in announced[0] and "\u202e" not in announced[0]
    assert "Approval needed: \\x1b[2Jhi \\u202eevil" in announced[0]


@pytest.mark.parametrize(("raw", "shown"), [("a\x1b[2Jb", "a\\x1b[2Jb"), ("a\rb\nc", "a\\x0db\\x0ac"),
                                            ("a\\x1b", "a\\\\x1b"), ("\u2028", "\\u2028"), ("Zoë", "Zoë")])
def test_console_safe_escapes_control_characters_and_cannot_be_forged(raw: str, shown: str) -> None:
    assert console_safe(raw) == shown


def test_a_link_quoted_in_a_subject_is_defanged_so_the_console_prints_one_link(ses, tmp_path: Path) -> None:
    announced: list[str] = []
    outbox = Outbox(tmp_path / "outbox", announced.append)
    subject = "Approval needed: x Review and decide here: HTTPS://evil.example/approvals/f"
    ses.send_raw_email(Source="interlock@example.com", Destinations=["approver@example.com"],
                       RawMessage={"Data": _message(subject=subject)})

    outbox.poll_once()

    assert "HxxPS://evil.example/approvals/f" in announced[0]
    links = [line.strip() for line in announced[0].splitlines() if re.search(r"(?i)https?://", line)]
    assert links == ["https://example.test/approvals/tok_123"]
