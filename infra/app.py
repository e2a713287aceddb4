"""The CDK app: ``cdk synth`` / ``cdk deploy`` run ``python -m infra.app`` (see cdk.json).

The stack is environment-agnostic (no account or region is looked up), so it synthesises offline without
credentials; ``cdk deploy`` takes the account and region of the current credentials. The cdk-nag AWS
Solutions checks run on every synthesis and stop it on any finding that is not acknowledged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Tags

from infra.context import InvalidSettingError, UnknownSettingError
from infra.nag import apply_checks
from infra.stack import InterlockStack

STACK_NAME = "Interlock"
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json (feature flags): the CLI passes it on, an app built in a test reads it here."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return context


def build_app(*, context: dict[str, Any] | None = None, **app_kwargs: Any) -> tuple[App, InterlockStack]:
    """The app with its one stack and the cdk-nag checks. Context from the CLI (``-c``) wins over ``context``,
    which wins over cdk.json."""
    app = App(context={**cdk_json_context(), **(context or {})}, **app_kwargs)
    stack = InterlockStack(app, STACK_NAME)
    Tags.of(stack).add("project", "interlock")
    apply_checks(app)
    return app, stack


def main() -> None:
    try:
        app, _ = build_app()
    except (InvalidSettingError, UnknownSettingError) as exc:
        # A setting the stack refuses: say which and how to fix it, without a traceback.
        print(f"[interlock] error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    app.synth()


if __name__ == "__main__":
    main()
