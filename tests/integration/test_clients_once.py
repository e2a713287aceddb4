"""A burst's first requests share one AWS client per process: concurrent first uses create it once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3.session
import pytest
from interlock import aws as interlock_aws
from interlock.ingest.ports import SecretsManagerWebhookSecrets

from integration.support import SECRET_PREFIX

THREADS = 16


def _all_at_once(call: Callable[[], Any]) -> list[Any]:
    """Run ``call`` in THREADS threads released together; their results (an exception fails the test)."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(call())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    return results


@pytest.fixture
def client_creations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every boto3 client created (through any session), by service name. Creating one is made slow, as it is
    on a cold container, so that concurrent first uses overlap."""
    created: list[str] = []
    real = boto3.session.Session.client

    def counting(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        created.append(service_name)
        time.sleep(0.05)
        return real(self, service_name, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", counting)
    return created


def test_given_a_fresh_process_when_threads_ask_for_a_client_at_once_then_one_is_created(
    aws: None, client_creations: list[str],
) -> None:
    clients = _all_at_once(lambda: interlock_aws.client("sqs"))

    assert client_creations == ["sqs"]
    assert len({id(c) for c in clients}) == 1


def test_given_a_fresh_process_when_a_burst_reads_a_webhook_secret_then_one_secrets_manager_client_is_created(
    aws: None, put_secret: Callable[..., None], client_creations: list[str],
) -> None:
    # Given the source's secret (stored before counting starts)
    put_secret("form", "whsec_" + "A" * 32)
    client_creations.clear()
    secrets = SecretsManagerWebhookSecrets(SECRET_PREFIX)

    # When a burst's first requests all read it at once
    read = _all_at_once(lambda: secrets.get("form"))

    # Then every one has it, and the process made one Secrets Manager client for all of them
    assert {tuple(r.signing) for r in read} == {("whsec_" + "A" * 32,)}
    assert client_creations == ["secretsmanager"]
