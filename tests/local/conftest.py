"""A small topology of test-only handlers, so these tests never depend on the real functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from interlock.local.cloud import LocalCloud
from interlock.local.functions import LocalLambda
from interlock.topology import (
    Function,
    Queue,
    Ref,
    RefKind,
    Route,
    StateMachine,
    Table,
    Topology,
    WebhookSource,
)

from .support import API_URL, SECRETS

HANDLERS = Path(__file__).parent / "handlers"


FLOW_ASL = {
    "StartAt": "Mail",
    "States": {
        "Mail": {"Type": "Task", "Resource": "${MailerArn}", "ResultPath": "$.mail", "End": True},
    },
}

CATCH_ASL = {
    "StartAt": "CallPartner",
    "States": {
        "CallPartner": {
            "Type": "Task",
            "Resource": "${FailArn}",
            "Catch": [
                {"ErrorEquals": ["Lambda.Unknown"], "ResultPath": "$.error", "Next": "Wrong"},
                {"ErrorEquals": ["PartnerDown"], "ResultPath": "$.error", "Next": "WaitForHuman"},
            ],
            "Next": "Wrong",
        },
        "WaitForHuman": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "${ApprovalArn}",
                "Payload": {"task_token.$": "$$.Task.Token", "attempt.$": "$$.State.RetryCount"},
            },
            "ResultPath": "$.approval",
            "End": True,
        },
        "Wrong": {"Type": "Fail", "Error": "WrongBranch"},
    },
}


def _function(name: str, module: str, timeout: int = 5, **env: str | Ref) -> Function:
    return Function(name=name, module=module, description=f"test: {name}", env=dict(env), timeout_seconds=timeout)


def build_topology(tmp_path: Path) -> Topology:
    flow = tmp_path / "flow.asl.json"
    flow.write_text(json.dumps(FLOW_ASL))
    catch = tmp_path / "catch.asl.json"
    catch.write_text(json.dumps(CATCH_ASL))
    return Topology(
        table=Table(),
        queues=(Queue(name="work", consumer="router", batch_size=10, visibility_timeout_seconds=0,
                      max_receive_count=2),),
        functions=(
            _function("echo", "lt_echo", timeout=1, LT_VALUE="plain", INTERLOCK_TABLE_NAME=Ref(RefKind.TABLE_NAME)),
            _function("fail", "lt_fail"),
            _function("broken", "lt_broken"),
            _function("approval", "lt_approval"),
            _function("ingest", "lt_ingest", LT_QUEUE_URL=Ref(RefKind.QUEUE_URL, "work"),
                      INTERLOCK_TABLE_NAME=Ref(RefKind.TABLE_NAME)),
            _function("router", "lt_router", LT_STATE_MACHINE_ARN=Ref(RefKind.STATE_MACHINE_ARN, "flow")),
            _function("mailer", "lt_mailer", LT_SENDER=Ref(RefKind.SETTING, "sender_email"),
                      LT_API_URL=Ref(RefKind.API_URL), LT_SOURCES=Ref(RefKind.WEBHOOK_SOURCES)),
        ),
        routes=(
            Route("POST", "/hooks/{source}", "ingest"),
            Route("GET", "/echo/{thing}", "echo"),
            Route("HEAD", "/echo/{thing}", "echo"),
            Route("GET", "/echo/special", "fail"),
            Route("GET", "/broken", "broken"),
        ),
        state_machines=(
            StateMachine("flow", str(flow), {"MailerArn": "mailer"}),
            StateMachine("catch", str(catch), {"FailArn": "fail", "ApprovalArn": "approval"}),
        ),
        webhook_sources=(WebhookSource("form", "standard-webhooks"), WebhookSource("chat", "whatsapp"),
                         WebhookSource("gh", "github")),
    )


@pytest.fixture
def topology(tmp_path: Path) -> Topology:
    return build_topology(tmp_path)


@pytest.fixture
def functions(topology: Topology) -> Iterator[LocalLambda]:
    local = LocalLambda(topology, functions_dir=HANDLERS)
    yield local
    local.close(timeout=2)


@pytest.fixture
def cloud(topology: Topology, functions: LocalLambda) -> Iterator[LocalCloud]:
    local = LocalCloud(topology, functions, API_URL, SECRETS, environ={"INTERLOCK_SENDER_EMAIL": "me@example.com"})
    local.start()
    yield local
    local.stop()
