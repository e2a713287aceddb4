"""Local mail delivery: every message sent through SES (moto) lands in ``<state_dir>/outbox/`` as .eml.

moto keeps what ``send_raw_email`` sent in its SES backend (``sent_messages``, each with ``raw_data``,
the MIME text). The outbox copies each new one to a file, byte for byte, so it opens in any mail
client, and announces it on the console with the link the message names in its
``X-Interlock-Approval-Link`` header (never a URL found in its text, which may quote an outsider's forged
one): the approver's inbox, on a laptop. What the console prints from a message (its recipient, its
subject: outsider text) has every control character escaped, so no message can drive the terminal, and
every URL scheme defanged (``hxxp://``), so the message's own link is the only link the console prints.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from interlock.local import get_logger
from interlock.local.functions import ACCOUNT_ID, REGION
from interlock.outgoing import APPROVAL_LINK_HEADER
from interlock.safe_log import printable

log = get_logger(__name__)

_LINK = re.compile(r"\Ahttps?://[^\s<>\"'\\]+\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Delivered:
    path: Path
    to: str
    subject: str
    link: str | None


def approval_link(message: EmailMessage) -> str | None:
    """The link the message names as its own (its ``X-Interlock-Approval-Link`` header), when it is one
    http(s) URL; None otherwise. The text part is never searched: it quotes what customers wrote."""
    value = message.get(APPROVAL_LINK_HEADER)
    link = str(value).strip() if value is not None else ""
    return link if _LINK.match(link) else None


def console_safe(value: str) -> str:
    """``value`` for a terminal (:func:`interlock.safe_log.printable`): control, format and separator characters
    (ESC, CR, LF, bidi overrides) shown as escapes (``\\x1b``, ``\\u202e``), never raw; a backslash doubled, so an
    escape cannot be forged; at most 2,000 characters."""
    return printable(value, 2000)


_SCHEME = re.compile(r"(?i)\b(h)tt(ps?)://")


def defanged(value: str) -> str:
    """``value`` with every URL scheme defanged (``hxxp://``): a subject may quote a customer's link, and the
    console prints one link only, the message's own."""
    return _SCHEME.sub(r"\1xx\2://", value)


def announcement(delivered: Delivered) -> str:
    subject = console_safe(defanged(delivered.subject.strip()))
    lines = [f"Approval email to {console_safe(defanged(delivered.to))}: {subject}"]
    if delivered.link:
        lines.append(f"  {console_safe(delivered.link)}")
    lines.append(f"  saved as {console_safe(str(delivered.path))}")
    return "\n".join(lines)


class Outbox:
    """Watches moto's SES backend; :meth:`poll_once` delivers what is new, :meth:`start` keeps polling."""

    def __init__(self, directory: Path, announce: Callable[[str], None] | None = None,
                 region: str = REGION, account: str = ACCOUNT_ID, interval_seconds: float = 0.2) -> None:
        self.directory = directory
        self.announce = announce
        self.region = region
        self.account = account
        self.interval_seconds = interval_seconds
        self._seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sent_messages(self) -> list[Any]:
        from moto.ses.models import ses_backends

        return list(ses_backends[self.account][self.region].sent_messages)

    def poll_once(self) -> list[Delivered]:
        with self._lock:
            sent = self._sent_messages()
            new, self._seen = sent[self._seen:], len(sent)
        delivered = []
        for message in new:
            raw = getattr(message, "raw_data", None)
            if raw is None:  # send_email / send_templated_email: not what Interlock sends
                log.debug("skipping SES message %s: not a raw message", getattr(message, "id", "?"))
                continue
            delivered.append(self._deliver(str(message.id), raw))
        return delivered

    def _deliver(self, message_id: str, raw: str | bytes) -> Delivered:
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{stamp}-{_UNSAFE.sub('_', message_id)}.eml"
        path.write_bytes(data)
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        delivered = Delivered(path, str(parsed.get("To", "")), str(parsed.get("Subject", "")),
                              approval_link(parsed))
        if self.announce is not None:
            self.announce(announcement(delivered))
        return delivered

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ses-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, after delivering whatever was sent until now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.poll_once()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.poll_once()
            except Exception:
                log.exception("could not deliver the SES outbox")
