"""SQS ingest queue consumer: start each envelope's workflow; failed records are retried, then DLQ'd."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from interlock.models import Envelope
from interlock.observability import logger, metrics, tracer
from interlock.wiring import router

processor = BatchProcessor(event_type=EventType.SQS)


def route_record(record: SQSRecord) -> None:
    attribute = record.message_attributes.get("acceptance")  # the token of the ingest delivery that queued it
    acceptance = attribute["stringValue"] if attribute else None
    router().route(Envelope.model_validate_json(record.body), acceptance)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=route_record, processor=processor, context=context)
