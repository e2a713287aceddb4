"""Test handler: keeps the request it serves in a module-level global, as Powertools' resolver keeps
``current_event``, and reads it back after a pause."""

import threading
import time
from typing import Any

current: Any = None
started = threading.Event()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global current
    current = event["id"]
    started.set()
    time.sleep(event.get("pause", 0))
    return {"id": current}
