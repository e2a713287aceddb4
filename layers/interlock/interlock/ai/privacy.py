"""What may reach a log line: never a full prompt, a model's output, an API key, or a customer's email
address or phone number in clear. Timeline entries keep prompts and outputs; logs keep only counts,
codes and redacted text."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Seven or more digits, optionally led by + and split by spaces, dots, dashes or brackets.
_PHONE = re.compile(r"(?<![\w])\+?\d[\d\s().-]{5,}\d(?![\w])")
_KEY = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{8,}")


def redact(text: str, limit: int = 200) -> str:
    """``text`` with email addresses, phone numbers and API-key-shaped strings masked, cut to ``limit``."""
    text = _KEY.sub("[key]", text)
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
