"""Test handler: logs, lets lt_log_second run and log, then logs again (its keys must still be its own)."""

from typing import Any

import lt_sync
from interlock.observability import logger


@logger.inject_lambda_context(correlation_id_path="run_id", clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("first: before")
    lt_sync.first_logged.set()
    if event.get("wait", True) and not lt_sync.second_logged.wait(5):
        raise TimeoutError("the second invocation never logged")
    logger.info("first: after")
    return {}
