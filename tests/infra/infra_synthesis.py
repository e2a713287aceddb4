"""One synthesis of the whole app per test session, shared by every infra test (see conftest.py).

Synthesis takes a while (jsii starts node, cdk-nag walks every resource), so the app is built once: the
layer first (cached: only the interlock package is copied afresh), then ``app.synth()`` into a temporary
cloud assembly. A cdk-nag failure does not stop the fixture; the template is still written and the nag
test reports the failure, so the other tests still say what they see.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra import build_layer
from infra.app import build_app
from infra.stack import InterlockStack


@dataclass(frozen=True)
class Synthesis:
    stack: InterlockStack
    template: Template
    raw: dict[str, Any]
    outdir: Path
    error: Exception | None
    seconds: float

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.raw["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == cfn_type}

    def validation_report(self) -> dict[str, Any] | None:
        path = self.outdir / "validation-report.json"
        report: dict[str, Any] | None = json.loads(path.read_text()) if path.is_file() else None
        return report


# A test's synthesis is never deployed: it may keep the placeholder addresses (infra/context.py, check_deployable).
TEST_CONTEXT = {"interlock:allow_placeholder_emails": "true"}


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synthesis:
    build_layer.build()
    started = time.monotonic()
    app, stack = build_app(context={**TEST_CONTEXT, **(context or {})}, outdir=str(outdir))
    error: Exception | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii surfaces a failed cdk-nag validation as RuntimeError
        error = exc
    raw = json.loads((outdir / stack.template_file).read_text())
    return Synthesis(
        stack=stack,
        # The cycle check is a test of its own (test_stack.py), which names the cycle instead of failing here.
        template=Template.from_json(raw, skip_cyclical_dependencies_check=True),
        raw=raw,
        outdir=outdir,
        error=error,
        seconds=time.monotonic() - started,
    )
