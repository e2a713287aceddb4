"""Test handler: a step run as every worker runs it (interlock.steps.run_step, the Lambda context's deadline),
whose first attempt overruns the function's timeout."""

import time
from typing import Any

from interlock.steps import StepInput, lambda_context, run_step
from interlock.wiring import timeline_store
from lt_slow_state import ATTEMPTS, FIRST_FINISHED
from pydantic import BaseModel

__all__ = ["ATTEMPTS", "FIRST_FINISHED", "handler"]


class Done(BaseModel):
    attempt: int


def _work(data: StepInput) -> Done:
    ATTEMPTS.append(data.attempt)
    if len(ATTEMPTS) == 1:
        time.sleep(1.5)  # the function's timeout is 1 s
        FIRST_FINISHED.set()
    return Done(attempt=data.attempt)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with lambda_context(context):
        return run_step("slow_step", event, StepInput, _work, timeline_store())
