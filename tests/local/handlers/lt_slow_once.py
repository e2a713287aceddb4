"""Test handler: a real step handler (interlock.steps) whose first attempt overruns the function's timeout."""

import threading
import time

from interlock.models import EntryState
from interlock.steps import StepInput, step_handler
from pydantic import BaseModel

ATTEMPTS: list[int] = []
FIRST_FINISHED = threading.Event()  # the timed-out first attempt, left running in the background, is done


class Done(BaseModel):
    attempt: int


def _work(data: StepInput) -> Done:
    ATTEMPTS.append(data.attempt)
    if len(ATTEMPTS) == 1:
        time.sleep(1.5)  # the function's timeout is 1 s
        FIRST_FINISHED.set()
    return Done(attempt=data.attempt)


handler = step_handler("slow_step", StepInput, _work, state=EntryState.PROCESSING)
