"""Test handler: the real watchdog handler (functions/events_execution_status.py), under a test function name."""

from events_execution_status import handler

__all__ = ["handler"]
