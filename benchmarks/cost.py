"""Cost benchmark: what AWS would bill per 1,000,000 runs of each workflow path, counted from real local runs.

Each path runs ``--runs`` times through the embedded local runtime (the same handlers, state machines and
settings as deployed, the offline AI provider: no model is called, so the numbers are ex-LLM). While they run,
every billable thing is counted where it happens:

* **API Gateway** (REST): each request the path makes to the API (the webhook; the approval page and decision).
* **Lambda**: each invocation of each function, and its duration (the local handler time, a proxy for the
  deployed one) times its memory, billed per GB-second (arm64), plus the request charge.
* **Step Functions**: each Express execution (its request, and its duration at the 64 MB tier) and each state
  transition of each Standard execution (the states entered, from the execution's history).
* **SQS**: each message the handlers send, plus the event source mapping's receive and delete of it.
* **DynamoDB** (on demand): the write and read request units of every call the handlers make, from the actual
  item sizes (1 KB per WRU, 4 KB per RRU, eventually consistent reads half, transactions double).
* **SES**: each email sent. **CloudWatch Logs**: the bytes of every log record the handlers write at INFO as
  Powertools formats it on AWS (Lambda's own START/END/REPORT lines are off: system log level WARN).

Prices are list prices (us-east-1, December 2026) from :data:`PRICES`, the one table to edit. Printed: each line
item per run and in $ per 1,000,000 runs, per path, and the total against the goal.

    python benchmarks/cost.py [--runs 10] [--json]      (make bench-cost)

This is a benchmark, not a test: it prints numbers and never fails a build (a CI smoke test runs it with one run).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "interlock"), str(REPO / "functions")]

# $ per unit, list prices (us-east-1).
PRICES: dict[str, float] = {
    "apigw_request": 3.50e-6,  # REST API, first 333 million requests a month
    "lambda_request": 0.20e-6,
    "lambda_gb_second": 0.0000133334,  # arm64, first 7.5 billion GB-seconds a month
    "express_request": 1.00e-6,
    "express_gb_second": 0.00001667,  # first 1,000 hours GB a month, billed in 64 MB
    "standard_transition": 25e-6,
    "sqs_request": 0.40e-6,  # standard queue, per 64 KB chunk
    "dynamodb_wru": 0.625e-6,  # on-demand
    "dynamodb_rru": 0.125e-6,
    "ses_email": 0.10e-3,
    "logs_gb": 0.50,  # CloudWatch Logs ingestion (standard class)
}
# Lambda's own START, END and REPORT lines of an invocation (about 420 bytes) are INFO system logs, which the
# functions do not log (infra/constructs/functions.py: system log level WARN).
LAMBDA_PLATFORM_LOG_BYTES = 0
EXPRESS_MEMORY_GB = 64 / 1024
GOALS = {"automatic": 30.0, "approval": 200.0}  # $ per 1M runs (automatic ex-LLM; approval with its email)


@dataclass
class Meter:
    """What one path's runs cost, counted as they happen."""

    api_requests: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    gb_seconds: float = 0.0
    express_executions: int = 0
    express_gb_seconds: float = 0.0
    standard_transitions: int = 0
    sqs_requests: int = 0
    wru: float = 0.0
    rru: float = 0.0
    emails: int = 0
    log_bytes: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    wru_by: Counter[str] = field(default_factory=Counter)  # "<function> <operation>" -> WRU
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dollars(self) -> dict[str, float]:
        return {
            "api_gateway": self.api_requests * PRICES["apigw_request"],
            "lambda_requests": sum(self.invocations.values()) * PRICES["lambda_request"],
            "lambda_duration": self.gb_seconds * PRICES["lambda_gb_second"],
            "express": self.express_executions * PRICES["express_request"]
            + self.express_gb_seconds * PRICES["express_gb_second"],
            "standard_transitions": self.standard_transitions * PRICES["standard_transition"],
            "sqs": self.sqs_requests * PRICES["sqs_request"],
            "dynamodb_writes": self.wru * PRICES["dynamodb_wru"],
            "dynamodb_reads": self.rru * PRICES["dynamodb_rru"],
            "ses": self.emails * PRICES["ses_email"],
            "logs": self.log_bytes / 1e9 * PRICES["logs_gb"],
        }


# -- DynamoDB capacity units from the wire items -------------------------------------------------------------


def value_size(value: dict[str, Any]) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = len(str(inner).lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else len(inner.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in inner.items())
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def rru(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)


def stored_item(table: str, key: dict[str, Any]) -> dict[str, Any]:
    """The item as it is now in moto's table (after an update), in the wire format."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    found = backend.get_table(table).get_item(*_key_values(key))
    return dict(found.to_json()["Attributes"]) if found else {}


def _key_values(key: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    return DynamoType(key["pk"]), DynamoType(key["sk"])


def dynamodb_units(operation: str, params: dict[str, Any], response: dict[str, Any] | None) -> tuple[float, float]:
    """(WRU, RRU) of one call."""
    table = params.get("TableName", "")
    if operation == "PutItem":
        return wru(item_size(params["Item"])), 0.0
    if operation == "UpdateItem":
        return wru(item_size(stored_item(table, params["Key"]) or params["Key"])), 0.0
    if operation == "DeleteItem":
        return 1.0, 0.0
    if operation == "GetItem":
        item = (response or {}).get("Item") or {}
        return 0.0, rru(item_size(item), bool(params.get("ConsistentRead")))
    if operation == "Query":
        items = (response or {}).get("Items") or []
        return 0.0, rru(sum(item_size(i) for i in items), bool(params.get("ConsistentRead")))
    if operation == "TransactWriteItems":
        units = 0.0
        for entry in params["TransactItems"]:
            (kind, body), = entry.items()
            if kind == "Put":
                units += wru(item_size(body["Item"]))
            elif kind == "Update":
                units += wru(item_size(stored_item(body["TableName"], body["Key"]) or body["Key"]))
            else:
                units += 1
        return 2 * units, 0.0
    return 0.0, 0.0


# -- the meters ----------------------------------------------------------------------------------------------

_current: list[Meter] = []


def _meter() -> Meter | None:
    return _current[-1] if _current else None


def _operator_functions() -> frozenset[str]:
    """Functions only operators call (every route IAM-authorised: GET /runs/...): the benchmark polls them to see
    a run end, which is no part of what the run costs."""
    from interlock.topology import TOPOLOGY

    routes: dict[str, set[str]] = {}
    for route in TOPOLOGY.routes:
        routes.setdefault(route.function, set()).add(route.auth)
    return frozenset(fn for fn, auths in routes.items() if auths == {"iam"})


OPERATOR_FUNCTIONS = _operator_functions()


def _in_handler() -> bool:
    """Whether the calling thread is an invocation of a function a run pays for."""
    name = threading.current_thread().name
    return name.startswith("lambda-") and name.split("-")[1] not in OPERATOR_FUNCTIONS


def install_meters() -> None:
    """Count AWS calls made by handlers, Lambda invocations and log bytes into the current meter."""
    import botocore.client
    from interlock.local.functions import LocalLambda
    from interlock.observability import logger as powertools_logger

    original_call = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        meter = _meter()
        counted = meter is not None and _in_handler()
        try:
            response = original_call(client, operation, params)
        except Exception as exc:
            if counted and meter is not None:
                _count_call(meter, client.meta.service_model.service_name, operation, params, None, failed=exc)
            raise
        if counted and meter is not None:
            _count_call(meter, client.meta.service_model.service_name, operation, params, response)
        return response

    botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]

    original_invoke = LocalLambda.invoke

    def invoke(self: LocalLambda, function: str, event: Any) -> Any:
        invocation = original_invoke(self, function, event)
        meter = _meter()
        if meter is not None and invocation.function not in OPERATOR_FUNCTIONS:
            memory = self.resolve(function).memory_mb
            billed_ms = math.ceil(invocation.duration_ms)
            with meter.lock:
                meter.invocations[invocation.function] += 1
                meter.gb_seconds += billed_ms / 1000 * memory / 1024
                meter.log_bytes += LAMBDA_PLATFORM_LOG_BYTES
        return invocation

    LocalLambda.invoke = invoke  # type: ignore[method-assign]

    # The handlers' records at INFO, formatted as on AWS (the Powertools logger's own formatter), counted and not
    # printed: the benchmark's console shows its report alone.
    (stream_handler,) = [h for h in powertools_logger._logger.handlers if isinstance(h, logging.StreamHandler)]
    formatter = stream_handler.formatter or logging.Formatter()
    stream_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115  (for the process's life)

    class LogBytes(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            meter = _meter()
            if meter is not None and _in_handler():
                size = len(formatter.format(record).encode()) + 1
                with meter.lock:
                    meter.log_bytes += size

    powertools_logger._logger.addHandler(LogBytes(level=logging.INFO))


def _count_call(meter: Meter, service: str, operation: str, params: dict[str, Any], response: Any,
                failed: Exception | None = None) -> None:
    with meter.lock:
        meter.calls[f"{service}.{operation}"] += 1
        if service == "dynamodb":
            if failed is not None and operation != "TransactWriteItems":
                meter.wru += 1 if operation in ("PutItem", "UpdateItem", "DeleteItem") else 0
                return
            w, r = dynamodb_units(operation, params, response)
            function = threading.current_thread().name.split("-")[1]
            meter.wru_by[f"{function} {operation}"] += w
            meter.wru += w
            meter.rru += r
        elif service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
            # the send, and the event source mapping's receive and delete of the message
            meter.sqs_requests += 3
        elif service == "ses" and operation in ("SendEmail", "SendRawEmail"):
            meter.emails += 1


@contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    _current.append(meter)
    try:
        yield meter
    finally:
        _current.pop()


# -- the paths -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path_:
    workflow: str
    name: str  # "automatic" or "approval"
    run: Callable[[Any], str]  # sends one run, drives it to its end, returns its run id


def _send(runtime: Any, payload: dict[str, Any], meter: Meter) -> str:
    import uuid

    import httpx
    from interlock.webhooks.standard import signed_headers

    body = json.dumps(payload).encode()
    secret = runtime.secrets["form"].signing[0]
    headers = {"content-type": "application/json",
               **signed_headers(secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body)}
    answer = httpx.post(f"{runtime.url}/webhooks/form", content=body, headers=headers, timeout=30)
    answer.raise_for_status()
    meter.api_requests += 1
    return str(answer.json()["run_id"])


def _wait(runtime: Any, run_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{runtime.url}/runs/{run_id}", timeout=10).json()
        if done(run):
            return dict(run)
        time.sleep(0.05)
    raise TimeoutError(f"run {run_id} did not finish: {run.get('status')}")


def _ticket(subject: str, body: str) -> dict[str, Any]:
    return {"type": "support.ticket", "data": {"subject": subject, "body": body, "customer_email": "ada@example.com",
                                               "customer_name": "Ada Lovelace"}}


def triage_automatic(runtime: Any, meter: Meter) -> str:
    run_id = _send(runtime, _ticket("Invoice question", "I was charged twice on my last invoice, can you check "
                                                        "the payment?"), meter)
    _wait(runtime, run_id, lambda r: r["status"] == "completed")
    return run_id


def triage_approval(runtime: Any, meter: Meter) -> str:
    ticket = _ticket("Refund request", "Please refund my last payment, I cancelled before renewal.")
    return _approved(runtime, meter, _send(runtime, ticket, meter))


def _approval_link(runtime: Any, run_id: str, timeout: float = 30.0) -> str:
    """The link in the approval email the outbox holds for ``run_id``."""
    import re
    from email import policy
    from email.parser import BytesParser

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(runtime.outbox_dir.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            text = message.get_body(preferencelist=("plain",))
            content = text.get_content() if text else ""
            if f"Run: {run_id}" in content:
                match = re.search(r"https?://\S+/approvals/[A-Za-z0-9_-]+", content)
                if match:
                    return match.group(0)
        time.sleep(0.05)
    raise TimeoutError(f"no approval email for {run_id}")



def _lead(discount: float | None = None) -> dict[str, Any]:
    import uuid

    data: dict[str, Any] = {"name": "Jordan Rivera", "email": f"jordan.{uuid.uuid4().hex[:8]}@hooli.example",
                            "company": "Hooli", "company_domain": "hooli.example", "plan_interest": "enterprise",
                            "message": "We are evaluating approval workflows for 400 seats; a demo this month?"}
    if discount is not None:
        data["requested_discount_pct"] = discount
    return {"type": "lead.submitted", "data": data}


def lead_automatic(runtime: Any, meter: Meter) -> str:
    run_id = _send(runtime, _lead(), meter)
    _wait(runtime, run_id, lambda r: r["status"] == "completed")
    return run_id


def lead_approval(runtime: Any, meter: Meter) -> str:
    return _approved(runtime, meter, _send(runtime, _lead(discount=20), meter))


def _approved(runtime: Any, meter: Meter, run_id: str) -> str:
    """Wait for the run's approval email, open its page, approve, and wait for the run to complete."""
    import httpx

    _wait(runtime, run_id, lambda r: r["status"] == "pending_approval")
    link = _approval_link(runtime, run_id)
    httpx.get(link, timeout=10).raise_for_status()  # the approver opens the page...
    httpx.post(link, data={"decision": "approve"}, timeout=10).raise_for_status()  # ...and approves
    meter.api_requests += 2
    _wait(runtime, run_id, lambda r: r["status"] == "completed")
    return run_id


PATHS: dict[str, dict[str, Callable[[Any, Meter], str]]] = {
    "support_triage": {"automatic": triage_automatic, "approval": triage_approval},
    "sales_lead": {"automatic": lead_automatic, "approval": lead_approval},
}


def count_executions(runtime: Any, meter: Meter, run_ids: set[str]) -> None:
    """Express executions (and their duration) and Standard transitions of the path's runs."""
    sfn = runtime.cloud.client("stepfunctions")
    for sm in runtime.topology.state_machines:
        arn = runtime.cloud.deployed.state_machine_arns[sm.name]
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                if execution["name"].removesuffix("-resume") not in run_ids:
                    continue
                if sm.type.value == "EXPRESS":
                    stopped = execution.get("stopDate")
                    seconds = (stopped - execution["startDate"]).total_seconds() if stopped else 0.0
                    meter.express_executions += 1
                    meter.express_gb_seconds += max(0.1, math.ceil(seconds * 10) / 10) * EXPRESS_MEMORY_GB
                else:
                    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
                    meter.standard_transitions += sum(1 for e in history["events"]
                                                      if e["type"].endswith("StateEntered"))


# -- running -------------------------------------------------------------------------------------------------


def measure(runs: int) -> dict[str, dict[str, Any]]:
    from interlock.local.runtime import LocalRuntime

    os.environ["INTERLOCK_AI_PROVIDER"] = "offline"
    # the log level deployed functions run at, so that the log bytes are what AWS would ingest
    os.environ["INTERLOCK_LOG_LEVEL"] = os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"
    install_meters()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="interlock-cost-") as state, \
            LocalRuntime(port=0, state_dir=state, echo=None, keep_state=False, poll_idle_seconds=0.02) as runtime:
        for workflow, paths in PATHS.items():
            paths[next(iter(paths))](runtime, Meter())  # a warm-up run: cold starts are not per-run costs
            for name, path in paths.items():
                meter = Meter()
                ids = set()
                with metering(meter):
                    for _ in range(runs):
                        ids.add(path(runtime, meter))
                time.sleep(0.3)  # the last invocations' bookkeeping
                count_executions(runtime, meter, ids)
                per_run = {k: v / runs for k, v in meter.dollars().items()}
                results[f"{workflow}/{name}"] = {
                    "runs": runs,
                    "per_1m_runs": {k: round(v * 1e6, 2) for k, v in per_run.items()},
                    "total_per_1m_runs": round(sum(per_run.values()) * 1e6, 2),
                    "goal_per_1m_runs": GOALS.get(name),
                    "per_run": {
                        "api_requests": meter.api_requests / runs,
                        "lambda_invocations": sum(meter.invocations.values()) / runs,
                        "lambda_gb_seconds": round(meter.gb_seconds / runs, 4),
                        "express_executions": meter.express_executions / runs,
                        "standard_transitions": meter.standard_transitions / runs,
                        "sqs_requests": meter.sqs_requests / runs,
                        "dynamodb_wru": meter.wru / runs,
                        "dynamodb_rru": meter.rru / runs,
                        "emails": meter.emails / runs,
                        "log_bytes": round(meter.log_bytes / runs),
                    },
                    "invocations": {k: v / runs for k, v in sorted(meter.invocations.items())},
                    "calls": {k: v / runs for k, v in sorted(meter.calls.items())},
                    "wru_by": {k: v / runs for k, v in sorted(meter.wru_by.items())},
                }
    return results


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for path, result in results.items():
        total, goal = result["total_per_1m_runs"], result["goal_per_1m_runs"]
        verdict = "" if goal is None else f"  (goal <= ${goal:.0f}: {'met' if total <= goal else 'NOT met'})"
        lines.append(f"{path}: ${total:.2f} per 1M runs{verdict}   [{result['runs']} runs measured]")
        for item, dollars in result["per_1m_runs"].items():
            lines.append(f"    {item:<22} ${dollars:>8.2f}")
        counts = ", ".join(f"{k} {v:g}" for k, v in result["per_run"].items())
        lines.append(f"    per run: {counts}")
        lines.append(f"    invocations per run: {', '.join(f'{k} {v:g}' for k, v in result['invocations'].items())}")
        lines.append(f"    WRU per run: {', '.join(f'{k} {v:g}' for k, v in result['wru_by'].items())}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per path (default 10)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    results = measure(args.runs)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
