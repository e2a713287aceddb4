"""Reading the approval page's posted form: a decision, or None (a 400), never an exception."""

from __future__ import annotations

import base64

import pytest
from interlock.approval_form import read_decision
from interlock.approvals import Decision


@pytest.mark.parametrize(("body", "is_base64", "expected"), [
    ("decision=approve", False, Decision.APPROVE),
    (base64.b64encode(b"decision=reject").decode(), True, Decision.REJECT),
    ("decision=reject&csrf=1", False, Decision.REJECT),
])
def test_given_the_pages_form_then_its_decision(body, is_base64, expected):
    assert read_decision(body, is_base64) is expected


@pytest.mark.parametrize(("body", "is_base64"), [
    (None, False), ("", False), ("decision=maybe", False), ("decision=approve&decision=reject", False),
    (base64.b64encode(b"\xff\xfe").decode(), True), (base64.b64encode(b"decision=approve&x=\xc3").decode(), True),
    ("%%%", True), ("decision=approve&" + "a=1&" * 40, False), ("decision=approve&x=" + "y" * 5000, False),
    ("decision=appro%ffve", False), ("decision=approve\ud800", False),
])
def test_given_a_body_that_is_not_the_pages_form_then_none(body, is_base64):
    assert read_decision(body, is_base64) is None
