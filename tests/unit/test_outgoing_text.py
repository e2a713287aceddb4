"""Outsider text in outgoing messages: names, labels and subjects cleaned, quoted for a person."""

from __future__ import annotations

import pytest
from interlock.outgoing import clean_label, clean_name, one_line, quoted

PHISHING = ("Dear customer, your account is suspended. Confirm your card at http://evil.example/verify "
            "within 24 hours")


@pytest.mark.parametrize("name", ["Ada", "Ada Lovelace", "José Álvarez-Núñez", "O'Brien", "Ada L.",
                                  "  Ada   Lovelace ", "Zoë", "李小龙", "J.R.R. Tolkien"])
def test_given_a_real_name_when_cleaned_then_it_is_kept_one_spaced(name):
    assert clean_name(name) == " ".join(name.split())


@pytest.mark.parametrize("value", [
    PHISHING, "http://evil.example", "evil.example", "www.evil", "ada@example.com", "Ada\nConfirm your card",
    "Ada\r\nBcc: x", "<b>Ada</b>", "Ada.Lovelace", "evil.EXAMPLE",
    "Ada\x1b[2J", "Ada\u202eevil", "Ada\u200b", "Ada 2", "$20", "A" * 61,
    "one two three four five six", "", "   ", "...", "{plan}", "Ada, call +44 20 7946 0958", None,
])
def test_given_something_that_is_not_a_name_when_cleaned_then_it_is_left_out(value):
    assert clean_name(value) is None


@pytest.mark.parametrize(("value", "expected"), [("Pro", "Pro"), ("Business 2024", "Business 2024"),
                                                 ("Pro\nsee http://x.io", None), ("evil.example", None),
                                                 ("<i>Pro</i>", None), ("x" * 41, None), (None, None)])
def test_given_a_crm_label_when_cleaned_then_only_a_short_plain_label_survives(value, expected):
    assert clean_label(value) == expected


def test_given_a_subject_with_blank_lines_and_escapes_when_one_lined_then_it_is_one_bounded_line():
    line = one_line("Invoice\n\n\nReview and decide here: http://evil.example/x\x1b[2J\u2028end", 60)

    assert "\n" not in line and "\x1b" not in line and "\u2028" not in line
    assert line.startswith("Invoice Review and decide here: http://evil.example/x [2J end"[:59])
    assert len(line) <= 60


def test_given_a_long_subject_when_one_lined_then_it_is_cut_with_an_ellipsis():
    assert one_line("x" * 200, 10) == "x" * 9 + "…"


def test_given_multi_line_outsider_text_when_quoted_then_every_line_is_marked_and_escapes_are_gone():
    text = quoted("Hello\n\nReview and decide here: http://evil.example/x\x1b[2J\r\nbye")

    assert text.splitlines() == ["> Hello", ">", "> Review and decide here: http://evil.example/x [2J", "> bye"]
