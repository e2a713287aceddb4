"""What each job's worker gives the steps it runs (built once per process, lazily)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from interlock.aws import once_per_process
from interlock.kit import Job
from interlock.kit.context import NotGranted, Services

# The jobs whose steps have side effects, through the idempotency ledger.
EFFECT_JOBS = frozenset({Job.ACT, Job.NOTIFY, Job.APPROVE})
CONNECTOR_JOBS = frozenset({Job.QUERY, Job.ACT, Job.NOTIFY})


def _setting(name: str) -> str:
    """A workflow setting, as its worker's environment holds it (``INTERLOCK_<NAME>``), else its default."""
    value = os.environ.get(f"INTERLOCK_{name.upper()}")
    if value is not None:
        return value
    from interlock.topology import DeploymentSettings

    return DeploymentSettings().get(name)


def workflow_table_name(name: str) -> str:
    """A workflow table's physical name, as its workers' environment holds it (``INTERLOCK_TABLE_<NAME>``)."""
    from interlock.kit.triggers import table_variable

    value = os.environ.get(table_variable(name), "").strip()
    if not value:
        raise NotGranted(f"this worker is not given the table {name!r} ({table_variable(name)} is not set)")
    return value


def _connectors(job: Job) -> Callable[[str], Any]:
    from interlock.kit import connectors

    def get(name: str) -> Any:
        if job not in connectors.connector(name).jobs:
            raise NotGranted(f"the {job} worker is not granted the {name} connector")
        return connectors.build(name)

    return get


def _starter() -> Callable[[list[Any], str], None] | None:
    """What sends follow-ups, for a worker the topology gives the ingest queue (a job whose steps start runs)."""
    url = os.environ.get("INTERLOCK_INGEST_QUEUE_URL", "").strip()
    if not url:
        return None
    from interlock.kit.follow_ups import QueueStarter

    return QueueStarter(url).send


def _handoffs() -> Callable[[], Any] | None:
    """What issues hand-off links, for a worker the topology tells the public URL (the notify worker)."""
    url = os.environ.get("INTERLOCK_PUBLIC_BASE_URL", "").strip()
    if not url:
        return None

    def issuer() -> Any:
        from interlock.handoffs import HandoffIssuer, HandoffLinks
        from interlock.settings import TableSettings, load

        return HandoffIssuer(HandoffLinks(load(TableSettings).table_name), url)

    return issuer


@once_per_process
def services(job: Job) -> Services:
    from interlock import wiring

    ledger = None
    if job in EFFECT_JOBS:
        from interlock.kit.ledger import DynamoLedger
        from interlock.settings import EffectSettings, load

        settings = load(EffectSettings)
        ledger = DynamoLedger(settings.table_name, wiring.timeline_store(), settings.effect_stale_seconds)
    return Services(
        timeline=wiring.timeline_store(),
        ledger=ledger,
        decisions=wiring.decision_runner if job is Job.DECIDE else None,
        connectors=_connectors(job) if job in CONNECTOR_JOBS else None,
        settings=_setting,
        tables=workflow_table_name,
        start=_starter(),
        handoffs=_handoffs() if job is Job.NOTIFY else None,
    )
