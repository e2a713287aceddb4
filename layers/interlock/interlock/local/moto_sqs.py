"""moto's SQS, receiving and sending without recounting the queue: :func:`install`, undone by what it returns.

For every message it hands out, moto's ``ReceiveMessage`` checks the message's retention period by asking for the
queue's attributes, and the attributes are computed whole each time, their counts (``ApproximateNumberOfMessages``
and the others) by going over every message in the queue. A receive of a batch from a queue holding N messages
therefore cost N steps per message received: with a backlog of 600 tickets (a burst the runtime is working through)
the event source's receives were two fifths of the runtime's CPU, and each message cost more the longer the queue.

The check needs one attribute, the retention period, which the queue holds as it is; it is read directly. The
check is otherwise moto's own: a message past its retention period is not delivered.

``SendMessage`` did the same to read one attribute, ``ContentBasedDeduplication``: every ticket the ingest queued
went over every message already queued, three times (13 % of the runtime's CPU while a burst was queued on 10,000
stored runs). While moto sends a message (``SQSBackend.send_message`` and ``Queue.add_message``, which read no
other attribute), a queue's attributes are that one, as the whole computation would give it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_sending = threading.local()  # set while this thread is in moto's send of a message


def _while_sending(method: Any) -> Any:
    def sending(*args: Any, **kwargs: Any) -> Any:
        previous = getattr(_sending, "on", False)
        _sending.on = True
        try:
            return method(*args, **kwargs)
        finally:
            _sending.on = previous

    return sending


def _deduplication_only(queue: Any) -> dict[str, Any]:
    """What moto's ``Queue.attributes`` gives for ``ContentBasedDeduplication`` (a FIFO queue's attribute), alone."""
    if not queue.fifo_queue:
        return {}
    value = queue.content_based_deduplication
    return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}


def install() -> Callable[[], None]:
    from moto.sqs import models
    from moto.sqs.models import Queue, SQSBackend

    original = SQSBackend.is_message_valid_based_on_retention_period
    original_send, original_add = SQSBackend.send_message, Queue.add_message
    original_attributes = Queue.attributes

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > models.unix_time())

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_sending, "on", False):
            return _deduplication_only(self)
        return original_attributes.fget(self)  # type: ignore[attr-defined]

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    SQSBackend.send_message = _while_sending(original_send)  # type: ignore[method-assign]
    Queue.add_message = _while_sending(original_add)  # type: ignore[method-assign]
    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]

    def uninstall() -> None:
        SQSBackend.is_message_valid_based_on_retention_period = original  # type: ignore[method-assign]
        SQSBackend.send_message = original_send  # type: ignore[method-assign]
        Queue.add_message = original_add  # type: ignore[method-assign]
        Queue.attributes = original_attributes  # type: ignore[method-assign]

    return uninstall
