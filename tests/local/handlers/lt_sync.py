"""Test helper shared by the lt_log_* handlers: events that order two concurrent invocations."""

import threading

first_logged = threading.Event()
second_logged = threading.Event()


def reset() -> None:
    first_logged.clear()
    second_logged.clear()
