"""Support triage is one package: its declaration, its decision points' prompts and policy, its approval view, its
samples, all in workflows/support_triage/; and no platform code names it (or any workflow)."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path

from interlock import cli
from interlock.ai.prompts import load_policy, load_prompt
from interlock.ai.runner import policy_dir, prompt_dir
from interlock.kit import registry
from interlock.settings import AiSettings
from interlock.workflows.support_triage import WORKFLOW
from interlock.workflows.support_triage.approval import view
from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET, DRAFT_REPLY

REPO = Path(__file__).parents[2]
INTERLOCK = REPO / "layers/interlock/interlock"
PACKAGE = INTERLOCK / "workflows/support_triage"

# The prompt files as every run so far recorded them (prompt_version, prompt_hash): a change to a prompt is a new
# version, a new file, never an edit of one of these.
PROMPT_HASHES = {
    "classify_ticket.v1.md": "a48c77b2db82192b41780b731032861436d30b3c99f77612835a931147cb954a",
    "classify_ticket.v2.md": "3fd5fa5581a130843d813a51af0f864731d320d7550b8f37d62f0a387b694dde",
    "draft_reply.v1.md": "8cae81908eff9f7252bfaf10121681f6cf405e2ebd227c7a4347fb6047c91711",
}


def test_the_declaration_names_its_approval_view_in_the_package() -> None:
    module, _, name = (WORKFLOW.approval_view or "").partition(":")

    assert module == "interlock.workflows.support_triage.approval"
    assert getattr(importlib.import_module(module), name) is view
    assert registry.workflow("support_triage").folder == PACKAGE


def test_the_decision_points_read_their_prompts_and_policy_from_the_package_unchanged() -> None:
    assert {p.name: h for p in (PACKAGE / "prompts").glob("*.md")
            for h in [hashlib.sha256(p.read_bytes()).hexdigest()]} == PROMPT_HASHES
    for point, version in ((CLASSIFY_TICKET, "v2"), (DRAFT_REPLY, "v1")):
        prompt = load_prompt(point.prompt, point.prompt_version, directory=prompt_dir(point))

        assert point.folder == PACKAGE
        assert (prompt.version, prompt.sha256) == (version, PROMPT_HASHES[f"{point.prompt}.{version}.md"])
        assert Path(policy_dir(point, AiSettings())) == PACKAGE / "policies"
        assert "support" in load_policy(point.policy, policy_dir(point, AiSettings())).lower()


def test_the_samples_are_found_by_interlock_send_in_the_package_and_read_as_tickets() -> None:
    form = cli._scheme_samples("standard-webhooks")

    for name in ("support_ticket", "refund_request"):
        assert Path(str(form[name])).parent == PACKAGE / "samples", name
        sample = json.loads(form[name].read_bytes())
        assert sample["type"] == "support.ticket" and {"subject", "body", "customer_email"} <= set(sample["data"])
    assert cli.DEFAULT_SAMPLES["standard-webhooks"] == "support_ticket"
    assert not [p.name for p in (INTERLOCK / "samples").glob("form*.json")]


def test_no_platform_code_imports_a_workflow_by_name() -> None:
    names = sorted(p.name for p in (INTERLOCK / "workflows").iterdir() if (p / "__init__.py").is_file())
    naming = re.compile(r"interlock\.workflows\.(" + "|".join(names) + r")\b|from interlock\.workflows import")
    platform = [p for p in [*INTERLOCK.rglob("*.py"), *(REPO / "functions").rglob("*.py")]
                if "workflows" not in p.relative_to(REPO).parts]

    assert {"support_triage", "sales_lead"} <= set(names)
    assert [str(p.relative_to(REPO)) for p in platform if naming.search(p.read_text("utf-8"))] == []
