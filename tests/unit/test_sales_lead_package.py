"""The lead workflow's package: its declaration, its decision point's files, its approval view, its samples."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path

from interlock import cli
from interlock.ai.prompts import load_policy, load_prompt
from interlock.ai.runner import policy_dir, prompt_dir
from interlock.kit import Job
from interlock.kit.connectors import CONNECTORS
from interlock.kit.context import StepContext
from interlock.settings import AiSettings
from interlock.steps import StepInput
from interlock.workflows.sales_lead import WORKFLOW
from interlock.workflows.sales_lead.approval import MODEL_WORDS, PROSPECT_WORDS, view
from interlock.workflows.sales_lead.decisions import SCORE_LEAD, offline_score
from interlock.workflows.sales_lead.rules import ScoreFacts
from pydantic import BaseModel

from unit.sales_lead_support import World
from unit.test_sales_lead_steps import Run, lead_of

PACKAGE = Path(__file__).parents[2] / "layers/interlock/interlock/workflows/sales_lead"


def test_every_declared_step_is_a_function_of_one_step_input_and_a_context_returning_a_model() -> None:
    for step in WORKFLOW.steps:
        module, _, name = step.run.partition(":")
        function = getattr(importlib.import_module(module), name)
        hints = typing.get_type_hints(function)  # as a worker reads the step's input model
        params = list(inspect.signature(function).parameters)

        assert params == ["data", "ctx"], step.name
        assert hints["ctx"] is StepContext, step.name
        assert issubclass(hints["data"], StepInput), step.name
        assert issubclass(hints["return"], BaseModel), step.name


def test_every_declared_connector_is_registered_and_granted_to_the_steps_job() -> None:
    used = {(step.name, name) for step in WORKFLOW.steps for name in step.connectors}

    assert used == {("fetch_contact", "crm"), ("dedupe", "crm"), ("enrich", "enrichment"), ("write_crm", "crm"),
                    ("create_fallback_task", "crm"), ("notify_owner", "slack")}
    for step in WORKFLOW.steps:
        for name in step.connectors:
            assert step.job in CONNECTORS[name].jobs, (step.name, name)
    assert CONNECTORS["slack"].jobs == (Job.NOTIFY,) and CONNECTORS["enrichment"].jobs == (Job.QUERY,)


def test_the_declaration_names_the_triggers_and_the_files_of_the_package() -> None:
    assert [(t.source, t.event_type) for t in WORKFLOW.triggers] == [("form", "lead.submitted"),
                                                                     ("hubspot", "hubspot.contact.creation")]
    assert WORKFLOW.jobs == (Job.VALIDATE, Job.QUERY, Job.RECORD, Job.DECIDE, Job.ACT, Job.NOTIFY, Job.APPROVE)
    assert WORKFLOW.settings == ("sales_discount_approval_pct",)
    module, _, name = (WORKFLOW.approval_view or "").partition(":")
    assert getattr(importlib.import_module(module), name) is view


def test_importing_the_declaration_loads_no_step_code() -> None:
    code = ("import sys; import interlock.workflows.sales_lead as w; "
            "print(sorted(m for m in sys.modules if m.startswith('interlock.workflows.sales_lead.') "
            "or m in ('pydantic', 'httpx', 'interlock.ai.runner')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


def test_the_decision_point_reads_its_prompt_and_policy_from_the_package() -> None:
    prompt = load_prompt(SCORE_LEAD.prompt, SCORE_LEAD.prompt_version, directory=prompt_dir(SCORE_LEAD))
    policy = load_policy(SCORE_LEAD.policy, policy_dir(SCORE_LEAD, AiSettings()))

    assert prompt.version == "v1" and "score inbound sales leads" in prompt.text
    assert "Lead scoring policies" in policy
    assert Path(policy_dir(SCORE_LEAD, AiSettings())) == PACKAGE / "policies"


def test_an_operators_policy_directory_replaces_the_packaged_policy_only_when_it_holds_one(tmp_path: Path) -> None:
    (tmp_path / "sales_lead.md").write_text("Our own rules.")
    other = tmp_path / "empty"
    other.mkdir()

    assert policy_dir(SCORE_LEAD, AiSettings(ai_policy_dir=str(tmp_path))) == str(tmp_path)
    assert policy_dir(SCORE_LEAD, AiSettings(ai_policy_dir=str(other))) == str(PACKAGE / "policies")


def test_the_offline_answer_is_valid_output_from_the_facts_a_model_sees() -> None:
    answer = offline_score(ScoreFacts(company="Hooli", free_mail_address=False, employees=12000,
                                      company_in_crm=False, contact_in_crm=False, partial=False).model_dump())

    assert SCORE_LEAD.output.model_validate_json(answer.model_dump_json()) == answer
    assert answer.score == 10 + 30 + 10 + 0 and answer.confidence == 0.8


def test_the_approval_view_shows_the_lead_its_score_and_reasons_and_the_discount_asked() -> None:
    run = Run(World(), lead_of()).through_discount()
    state = {"lead": run.lead, "crm": run.crm, "enrichment": run.enrichment, "score": run.score,
             "assignment": run.assignment, "discount": run.discount}

    shown = view({k: v.model_dump(mode="json") for k, v in state.items()})

    fields = dict(shown.fields)
    assert shown.title == "Approve a 20% discount for Hooli?"
    assert (fields["Discount asked"], fields["Approval needed above"]) == ("20%", "15%")
    assert fields["Score"] == f"{run.score.score}/100 (hot)"
    assert fields["Lead"] == "Jordan Rivera" and fields["Company size"] == "12000 employees (enrichment)"
    assert [q.label for q in shown.quoted] == [f"Message ({PROSPECT_WORDS})", "Score reasons (the scoring rules)"]
    assert "12000 employees" in shown.quoted[1].text
    assert MODEL_WORDS != "the scoring rules"


def test_the_approval_view_never_shows_an_unclean_name_as_its_own_words() -> None:
    run = Run(World(), lead_of(name="Click https://evil.example now")).through_discount()
    state = {"lead": run.lead, "crm": run.crm, "enrichment": run.enrichment, "score": run.score,
             "assignment": run.assignment, "discount": run.discount}

    shown = view({k: v.model_dump(mode="json") for k, v in state.items()})

    assert dict(shown.fields)["Lead"] == "(no clean name given)"


def test_the_samples_are_found_by_interlock_send_and_read_as_leads() -> None:
    form = cli._scheme_samples("standard-webhooks")
    hubspot = cli._scheme_samples("hubspot")

    assert {"lead_submitted", "lead_freemail", "support_ticket"} <= set(form)
    assert {"contact_creation", ""} <= {k if k != "hubspot" else "" for k in hubspot}
    lead = json.loads(form["lead_submitted"].read_bytes())
    batch = json.loads(hubspot["contact_creation"].read_bytes())
    assert lead["type"] == "lead.submitted" and lead["data"]["requested_discount_pct"] == 20
    assert [e["subscriptionType"] for e in batch] == ["contact.creation"] * 2
    assert [str(e["objectId"]) for e in batch] == ["95001234501", "95001234502"]
