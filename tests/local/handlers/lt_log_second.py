"""Test handler: waits until lt_log_first has logged once, then starts its own invocation and logs."""

from typing import Any

import lt_sync
from interlock.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not lt_sync.first_logged.wait(5):
        raise TimeoutError("the first invocation never logged")
    return _logged(event, context)


@logger.inject_lambda_context(correlation_id_path="run_id", clear_state=True)
def _logged(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(step="second")
    logger.info("second")
    lt_sync.second_logged.set()
    return {}
