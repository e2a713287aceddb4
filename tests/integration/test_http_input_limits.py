"""Path parameters that cannot name a record are answered 404 without a lookup (DynamoDB refuses a key over
2,048 bytes: the lookup would be a 5xx on AWS, which moto does not reproduce for a query)."""

from __future__ import annotations

import json

import http_runs
import pytest

from integration.support import rest_event


class RefusesLongKeys:
    """A timeline store that fails the way DynamoDB does for a key past its limit."""

    def get(self, run_id: str) -> None:
        if len(f"RUN#{run_id}".encode()) > 2048:
            raise RuntimeError("ValidationException: Size of hashkey has exceeded the maximum size limit")
        return None


@pytest.mark.parametrize("run_id", ["x" * 3000, "é" * 1100, "a\x1bb"])
def test_given_a_run_id_no_run_can_have_then_404_and_no_lookup(cloud, lambda_context, monkeypatch, run_id):
    monkeypatch.setattr(http_runs, "timeline_store", lambda: RefusesLongKeys())
    event = rest_event("GET", f"/runs/{run_id}", "/runs/{run_id}", {"run_id": run_id})

    response = http_runs.handler(event, lambda_context)

    assert response["statusCode"] == 404
    assert len(json.loads(response["body"])["message"]) < 200  # not the whole id echoed back
