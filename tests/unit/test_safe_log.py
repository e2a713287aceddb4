"""interlock.safe_log.printable: outsider text as one line of printable characters."""

from __future__ import annotations

import pytest
from interlock.safe_log import printable


@pytest.mark.parametrize(("text", "shown"), [
    ("Invoice question", "Invoice question"),
    ("\x1b[2Jhi", "\\x1b[2Jhi"),
    ("line\r\nFAKE 200", "line\\x0d\\x0aFAKE 200"),
    ("nul\x00 del\x7f", "nul\\x00 del\\x7f"),
    ("sep\u2028x\u200bz", "sep\\u2028x\\u200bz"),
    ("\ud800", "\\ud800"),
    ("a\\x1b", "a\\\\x1b"),  # a backslash typed by an outsider cannot pass for an escape
    ("Zoë ☕ 日本", "Zoë ☕ 日本"),
])
def test_control_and_invisible_characters_are_escaped_and_the_rest_kept(text, shown):
    assert printable(text) == shown


def test_text_is_cut_at_the_limit_and_the_cut_is_marked():
    assert printable("x" * 10, 4) == "xxxx…"
    assert printable("\x1b" * 10, 2) == "\\x1b\\x1b…"
    assert printable(12345) == "12345"
