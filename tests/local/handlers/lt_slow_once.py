"""Test handler: a real step handler (interlock.steps) whose first attempt overruns the function's timeout."""

import time

from interlock.models import EntryState
from interlock.steps import StepInput, step_handler
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


handler = step_handler("slow_step", StepInput, _work, state=EntryState.PROCESSING)
