"""Step Functions task (support_triage.RequestApproval, .waitForTaskToken): email the approver a link."""

from typing import Any

from interlock.approvals import ApprovalRequestInput, RequestSettings, SesMailer
from interlock.observability import logger, metrics, tracer
from interlock.settings import ApprovalRequestSettings, load
from interlock.wiring import approval_service

_settings = load(ApprovalRequestSettings)
_request = RequestSettings(
    public_base_url=_settings.public_base_url,
    approver_email=_settings.approver_email,
    sender_email=_settings.sender_email,
    ttl_seconds=_settings.approval_ttl_seconds,
)


@logger.inject_lambda_context(correlation_id_path="run_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return approval_service().request(ApprovalRequestInput.model_validate(event), _request, SesMailer())
