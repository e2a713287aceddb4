"""Helpers shared by every test layer. Nothing here is autouse: each layer sets up what it needs.

One session-wide rule: the tests never reach a real model. A developer's ``OPENAI_*`` variables (the
openai SDK reads them itself) are removed before any test runs; a test that wants a model points the SDK
at ``fake_openai.FakeOpenAI`` explicitly.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

OPENAI_ENVIRONMENT = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
                      "OPENAI_WEBHOOK_SECRET", "OPENAI_ADMIN_KEY")


def pytest_sessionstart(session: pytest.Session) -> None:
    for name in OPENAI_ENVIRONMENT:
        os.environ.pop(name, None)


@dataclass
class FakeLambdaContext:
    """What Powertools' ``inject_lambda_context`` reads from a Lambda context object."""

    function_name: str = "interlock-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:interlock-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/interlock-test"
    log_stream_name: str = "2024/01/01/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def make_whsec(seed: bytes | None = None) -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes (or of ``seed``)."""
    return "whsec_" + base64.b64encode(seed if seed is not None else os.urandom(32)).decode()


@pytest.fixture
def new_whsec() -> Callable[..., str]:
    """A factory of fresh ``whsec_`` secrets (call it once per secret you need)."""
    return make_whsec
