"""moto's SQS, receiving without recounting the queue for each message: :func:`install`, undone by what it returns.

For every message it hands out, moto's ``ReceiveMessage`` checks the message's retention period by asking for the
queue's attributes, and the attributes are computed whole each time, their counts (``ApproximateNumberOfMessages``
and the others) by going over every message in the queue. A receive of a batch from a queue holding N messages
therefore cost N steps per message received: with a backlog of 600 tickets (a burst the runtime is working through)
the event source's receives were two fifths of the runtime's CPU, and each message cost more the longer the queue.

The check needs one attribute, the retention period, which the queue holds as it is; it is read directly. The
check is otherwise moto's own: a message past its retention period is not delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install() -> Callable[[], None]:
    from moto.sqs import models
    from moto.sqs.models import SQSBackend

    original = SQSBackend.is_message_valid_based_on_retention_period

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > models.unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]

    def uninstall() -> None:
        SQSBackend.is_message_valid_based_on_retention_period = original  # type: ignore[method-assign]

    return uninstall
