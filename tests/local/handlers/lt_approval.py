"""Test handler for a .waitForTaskToken task: keeps the token where the test can find it."""

from typing import Any

TOKENS: list[str] = []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    TOKENS.append(event["task_token"])
    return {"waiting": True}
