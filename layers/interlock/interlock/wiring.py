"""Adapters built once per process from validated settings (so once per cold start, lazily).

Handlers call these factories; tests build the services directly with fakes instead. Each is built once even
when a burst's first requests ask for it at the same time (:func:`interlock.aws.once_per_process`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.aws import once_per_process as cache
from interlock.settings import TableSettings, load
from interlock.timeline import DynamoTimelineStore, TimelineStore

if TYPE_CHECKING:
    from interlock.ai.runner import DecisionRunner
    from interlock.approval_resend import ApprovalResend
    from interlock.approvals import ApprovalService, RequestSettings
    from interlock.connectors.crm import Crm
    from interlock.connectors.helpdesk import Helpdesk
    from interlock.dead_letters import Redrive
    from interlock.handoffs import HandoffService
    from interlock.ingest.service import IngestService
    from interlock.kit.correlation import Correlation
    from interlock.replay import ReplayService
    from interlock.routing import Router
    from interlock.run_list import RunLists


@cache
def timeline_store() -> TimelineStore:
    return DynamoTimelineStore(load(TableSettings).table_name)


@cache
def run_lists() -> RunLists:
    from interlock.kit import registry
    from interlock.run_list import DynamoRunIndex, RunLists

    return RunLists(DynamoRunIndex(load(TableSettings).table_name), tuple(sorted(registry.workflows())))


@cache
def ingest_service() -> IngestService:
    from interlock.ingest.ports import SecretsManagerWebhookSecrets, SqsEventQueue
    from interlock.ingest.service import IngestService
    from interlock.settings import IngestSettings

    settings = load(IngestSettings)
    return IngestService(
        settings=settings,
        secrets=SecretsManagerWebhookSecrets(settings.secret_prefix, settings.secret_cache_seconds),
        store=timeline_store(),
        queue=SqsEventQueue(settings.ingest_queue_url),
    )


@cache
def replay_service() -> ReplayService:
    from interlock.ingest.ports import SqsEventQueue
    from interlock.replay import ReplayService
    from interlock.settings import ReplaySettings

    return ReplayService(store=timeline_store(), queue=SqsEventQueue(load(ReplaySettings).ingest_queue_url))


@cache
def redrive() -> Redrive:
    """The DLQs an operator redrives, by name: the ingest queue's, back to the ingest queue."""
    from interlock.dead_letters import Redrive, SqsDeadLetters, SqsSender
    from interlock.settings import RedriveSettings
    from interlock.topology import INGEST_QUEUE

    settings = load(RedriveSettings)
    return Redrive(timeline_store(), {INGEST_QUEUE: SqsDeadLetters(settings.ingest_dlq_url)},
                   SqsSender(settings.ingest_queue_url))


@cache
def approval_resend() -> ApprovalResend:
    """An operator's resend of a lost approval email, with the request step's own settings and mailer."""
    from interlock.approval_resend import ApprovalResend
    from interlock.approvals import DynamoApprovalStore, SesMailer

    return ApprovalResend(DynamoApprovalStore(load(TableSettings).table_name), timeline_store(), SesMailer(),
                          approval_request_settings())


@cache
def router() -> Router:
    from interlock.routing import Router, StepFunctionsEngine
    from interlock.settings import RouterSettings

    settings = load(RouterSettings)
    return Router(
        engine=StepFunctionsEngine(settings.state_machine_arns),
        store=timeline_store(),
        policy={"approval_timeout_seconds": settings.approval_timeout_seconds},
        correlation=correlation,
    )


@cache
def handoff_service() -> HandoffService:
    """The hand-off pages: links in the timeline table, conversations in the workflows' tables (their physical names
    in ``INTERLOCK_TABLE_<NAME>``), the runs a page starts sent to the ingest queue."""
    from interlock.handoffs import HandoffLinks, HandoffService
    from interlock.kit.conversation import Conversations
    from interlock.kit.follow_ups import QueueStarter
    from interlock.kit.services import workflow_table_name
    from interlock.settings import ReplaySettings

    settings = load(ReplaySettings)  # the table and the ingest queue
    return HandoffService(
        links=HandoffLinks(settings.table_name),
        conversations=lambda workflow: Conversations(workflow_table_name(
            workflow.handoff_page.table if workflow.handoff_page else "")),
        start=QueueStarter(settings.ingest_queue_url).send,
    )


@cache
def approval_service() -> ApprovalService:
    from interlock.approvals import ApprovalService, DynamoApprovalStore, StepFunctionsCallbacks

    return ApprovalService(
        store=DynamoApprovalStore(load(TableSettings).table_name),
        timeline=timeline_store(),
        callbacks=StepFunctionsCallbacks(),
    )


@cache
def crm() -> Crm | None:
    from interlock.connectors.crm import from_settings

    return from_settings()  # one connector (and one HTTP client) per process, shared with the kit's "crm"


@cache
def helpdesk() -> Helpdesk | None:
    from interlock.connectors.helpdesk import from_settings

    return from_settings()


@cache
def decision_runner() -> DecisionRunner:
    from interlock.ai.choice import ProviderChoice
    from interlock.ai.runner import DecisionRunner
    from interlock.settings import AiSettings

    settings = load(AiSettings)
    return DecisionRunner(ProviderChoice(settings), timeline_store(), settings)


@cache
def approval_request_settings() -> RequestSettings:
    from interlock.approvals import RequestSettings
    from interlock.settings import ApprovalRequestSettings

    settings = load(ApprovalRequestSettings)
    return RequestSettings(public_base_url=settings.public_base_url, approver_email=settings.approver_email,
                           sender_email=settings.sender_email, ttl_seconds=settings.approval_ttl_seconds)


@cache
def correlation() -> Correlation:
    """The correlation store: waits for external events and the events that end them (interlock.kit.correlation)."""
    from interlock.approvals import StepFunctionsCallbacks
    from interlock.kit.correlation import Correlation, CorrelationTable

    return Correlation(CorrelationTable(load(TableSettings).table_name), timeline_store(), StepFunctionsCallbacks())
