"""Test helper of lt_slow_once: what its attempts share across execution environments (a retry after a timeout
runs in another environment while the overrun attempt still runs in the first)."""

import threading

ATTEMPTS: list[int] = []
FIRST_FINISHED = threading.Event()  # the timed-out first attempt, left running in the background, is done
