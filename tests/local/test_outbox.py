"""The SES outbox: every raw message sent through moto lands on disk, byte for byte, and is announced."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import boto3
import pytest
from interlock.local.outbox import Outbox
from moto import mock_aws


@pytest.fixture
def ses() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("ses", region_name="us-east-1")
        client.verify_email_identity(EmailAddress="interlock@example.com")
        yield client


def _message() -> bytes:
    message = EmailMessage()
    message["From"] = "interlock@example.com"
    message["To"] = "approver@example.com"
    message["Subject"] = "Approval needed: refund for Grace"
    message.set_content("A run needs you.\n\nOpen https://example.test/approvals/tok_123 to decide.\n")
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
