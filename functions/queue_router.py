"""SQS ingest queue consumer: start each envelope's workflow, and each schedule firing's, status change's or
follow-up's (made into an envelope here: interlock.kit.triggers); failed records are retried, then DLQ'd."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from interlock.kit.triggers import DELIVERY_ATTRIBUTE, PoisonMessage, parse_message
from interlock.models import Envelope
from interlock.observability import count, logger, metrics, tracer
from interlock.wiring import router

processor = BatchProcessor(event_type=EventType.SQS)


def route_record(record: SQSRecord) -> None:
    try:
        message = parse_message(record.body)
    except PoisonMessage as exc:
        poisoned(record, exc)
        raise
    if not isinstance(message, Envelope):  # a schedule's firing, a table's status change, a follow-up
        # A message moved back from the DLQ names its first delivery: the acceptance token that delivery recorded.
        delivery = record.message_attributes.get(DELIVERY_ATTRIBUTE)
        try:
            router().accept_trigger(message, delivery["stringValue"] if delivery else record.message_id)
        except PoisonMessage as exc:
            poisoned(record, exc)
            raise
        return
    attribute = record.message_attributes.get("acceptance")  # the token of the ingest delivery that queued it
    acceptance = attribute["stringValue"] if attribute else None
    router().route(message, acceptance)


def poisoned(record: SQSRecord, exc: PoisonMessage) -> None:
    """A message nothing can route: logged (what is wrong, never the body), retried, then moved to the DLQ."""
    logger.warning("poison message: retried, then moved to the DLQ",
                   extra={"message_id": record.message_id, "reason": str(exc),
                          "receive_count": record.attributes.approximate_receive_count})
    count("MessagesPoison")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=route_record, processor=processor, context=context)
