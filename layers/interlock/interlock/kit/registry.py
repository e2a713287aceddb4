"""Which workflows exist: every package under ``interlock.workflows`` that declares ``WORKFLOW``, plus the packages
the ``extra_workflows`` setting names (``INTERLOCK_EXTRA_WORKFLOWS``, comma-separated import paths).

The routing table is made of the workflows' triggers. Loading a workflow imports only its package's
``__init__`` (the declaration); a step's code is imported by the worker that runs it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cache
from pathlib import Path

from interlock.kit import Resumer, Trigger, Workflow

EXTRA_ENV = "INTERLOCK_EXTRA_WORKFLOWS"
BUILT_IN_PACKAGE = "interlock.workflows"
# A workflow's name is part of state machine and execution names, and of the workers' events.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class WorkflowError(ValueError):
    """A workflow package that cannot be used: no declaration, a bad or duplicate name, a trigger taken."""


class UnknownWorkflow(LookupError):
    pass


_FUNCTION_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def load(package: str) -> Workflow:
    """The declaration of the workflow package ``package``, with its folder."""
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise WorkflowError(f"workflow package {package!r} cannot be imported: {exc}") from exc
    declared = getattr(module, "WORKFLOW", None)
    if not isinstance(declared, Workflow):
        raise WorkflowError(f"workflow package {package!r} declares no WORKFLOW (an interlock.kit.Workflow)")
    if not _NAME.fullmatch(declared.name):
        raise WorkflowError(f"workflow {declared.name!r}: a name is lower-case letters, digits and '_', "
                            "starting with a letter, at most 40")
    if module.__file__ is None:
        raise WorkflowError(f"workflow package {package!r} has no folder")
    return replace(declared, package=package, folder=Path(module.__file__).parent)


def _packages(extra: str) -> list[str]:
    found = []
    base = importlib.import_module(BUILT_IN_PACKAGE)
    for info in sorted(pkgutil.iter_modules(base.__path__), key=lambda i: i.name):
        if info.ispkg:
            found.append(f"{BUILT_IN_PACKAGE}.{info.name}")
    found += [part.strip() for part in extra.split(",") if part.strip()]
    return found


SCHEDULE_SOURCE = "schedule"  # the envelope source of a schedule's firings
TABLE_SOURCE = "table"  # the envelope source of a workflow table's status changes
FOLLOW_UP_SOURCE = "workflow"  # the envelope source of the runs a workflow's steps start (its follow-ups)
# Sources no webhook may take: their envelopes are made by the platform, never by a sender.
PLATFORM_SOURCES = frozenset({SCHEDULE_SOURCE, TABLE_SOURCE, FOLLOW_UP_SOURCE})


def _keys(workflow: Workflow) -> list[tuple[tuple[str, str], str]]:
    """Every (source, event type) the workflow takes, with what takes it (for the error naming a clash)."""
    keys = [((t.source, t.event_type), "starts") for t in workflow.triggers]
    keys += [((SCHEDULE_SOURCE, workflow.schedule_type(s.name)), "starts") for s in workflow.schedules]
    keys += [((TABLE_SOURCE, c.event_type), "starts") for c in workflow.status_changes]
    keys += [((FOLLOW_UP_SOURCE, f"{workflow.name}.{f.name}"), "starts") for f in workflow.follow_ups]
    keys += [((r.source, r.event_type), "resumes") for r in workflow.resumers]
    return keys


# A table named so would take the timeline table's variable (its physical name is INTERLOCK_TABLE_<NAME>).
_RESERVED_TABLE_NAMES = frozenset({"name"})


def _check(workflow: Workflow) -> None:
    from interlock.kit.triggers import ScheduleExpressionError, check_schedule

    for schedule in workflow.schedules:
        try:
            check_schedule(workflow.name, schedule)
        except ScheduleExpressionError as exc:
            raise WorkflowError(str(exc)) from None
    names = [s.name for s in workflow.schedules] + [c.name for c in workflow.status_changes]
    for name in names:
        if not _NAME.fullmatch(name):
            raise WorkflowError(f"workflow {workflow.name!r}: schedule or status change name {name!r} is not "
                                "lower-case letters, digits and '_', starting with a letter, at most 40")
    if len(set(names)) != len(names):
        raise WorkflowError(f"workflow {workflow.name!r}: two schedules or status changes share a name")
    tables = {t.name for t in workflow.tables}
    for table in workflow.tables:
        if not _NAME.fullmatch(table.name):
            raise WorkflowError(f"workflow {workflow.name!r}: table name {table.name!r} is not lower-case letters, "
                                "digits and '_', starting with a letter, at most 40")
        index_names = [i.name for i in table.indexes]
        if len(set(index_names)) != len(index_names) or not all(_NAME.fullmatch(n) for n in index_names):
            raise WorkflowError(f"workflow {workflow.name!r}: table {table.name!r}: index names are distinct, "
                                "lower-case letters, digits and '_', starting with a letter, at most 40")
        if table.name in _RESERVED_TABLE_NAMES:
            raise WorkflowError(f"workflow {workflow.name!r}: a table may not be named {table.name!r} (its variable, "
                                f"INTERLOCK_TABLE_{table.name.upper()}, is the timeline table's)")
    watched: dict[str, str] = {}
    for change in workflow.status_changes:
        if change.table not in tables:
            raise WorkflowError(f"workflow {workflow.name!r}: status change {change.name!r} watches table "
                                f"{change.table!r}, which the workflow does not declare (Workflow.tables)")
        if change.from_ == change.to:
            raise WorkflowError(f"workflow {workflow.name!r}: status change {change.name!r} does not change the "
                                f"status ({change.from_!r} to itself)")
        # One record then is at most one status change (its dedupe key is the table's sequence number).
        if watched.setdefault(change.table, change.attribute) != change.attribute:
            raise WorkflowError(f"workflow {workflow.name!r}: the status changes of table {change.table!r} watch "
                                f"both {watched[change.table]!r} and {change.attribute!r}; one table's status "
                                "changes watch one attribute")
    follow_ups = [f.name for f in workflow.follow_ups]
    for name in follow_ups:
        if not _NAME.fullmatch(name):
            raise WorkflowError(f"workflow {workflow.name!r}: follow-up name {name!r} is not lower-case letters, "
                                "digits and '_', starting with a letter, at most 40")
    if len(set(follow_ups)) != len(follow_ups):
        raise WorkflowError(f"workflow {workflow.name!r}: two follow-ups share a name")
    for step in workflow.steps:
        unknown = [name for name in step.starts if name not in follow_ups]
        if unknown:
            raise WorkflowError(f"workflow {workflow.name!r}: step {step.name!r} starts {', '.join(unknown)}, "
                                "which the workflow does not declare (Workflow.follow_ups)")
    page = workflow.handoff_page
    if page is not None:
        if page.table not in tables:
            raise WorkflowError(f"workflow {workflow.name!r}: its hand-off page reads table {page.table!r}, which the "
                                "workflow does not declare (Workflow.tables)")
        missing = [name for name in (page.reply, page.hand_back) if name not in follow_ups]
        if missing or page.reply == page.hand_back:
            raise WorkflowError(f"workflow {workflow.name!r}: its hand-off page starts the follow-ups "
                                f"{page.reply!r} and {page.hand_back!r}: two different ones it declares "
                                "(Workflow.follow_ups)")
    for source in [t.source for t in workflow.triggers] + [r.source for r in workflow.resumers]:
        if source in PLATFORM_SOURCES:
            raise WorkflowError(f"workflow {workflow.name!r}: a trigger or resumer of source {source!r} "
                                "(the platform makes those envelopes: declare a Schedule, StatusChange or FollowUp)")
    if workflow.run_summary is not None and not _FUNCTION_PATH.fullmatch(workflow.run_summary):
        raise WorkflowError(f"workflow {workflow.name!r}: run_summary {workflow.run_summary!r} is not "
                            "'module:function'")
    if workflow.resumers and not workflow.wait:
        raise WorkflowError(f"workflow {workflow.name!r} declares resumers but no wait state machine")


@cache
def _workflows(extra: str) -> dict[str, Workflow]:
    workflows: dict[str, Workflow] = {}
    taken: dict[tuple[str, str], tuple[str, str]] = {}
    tables: dict[str, str] = {}
    for package in _packages(extra):
        workflow = load(package)
        if workflow.name in workflows:
            raise WorkflowError(f"two workflow packages are named {workflow.name!r}: "
                                f"{workflows[workflow.name].package} and {package}")
        _check(workflow)
        for (source, event_type), verb in _keys(workflow):
            if (source, event_type) in taken:
                first_verb, first = taken[(source, event_type)]
                both = (f"{verb} both {first!r} and {workflow.name!r}" if verb == first_verb else
                        f"{first_verb} {first!r} and {verb} {workflow.name!r}")
                raise WorkflowError(f"{source} {event_type!r} {both}: an event starts or resumes one workflow")
            taken[(source, event_type)] = (verb, workflow.name)
        for table in workflow.tables:
            if table.name in tables:
                raise WorkflowError(f"workflows {tables[table.name]!r} and {workflow.name!r} both declare the "
                                    f"table {table.name!r}")
            tables[table.name] = workflow.name
        workflows[workflow.name] = workflow
    return workflows


def workflows(extra: str | None = None) -> dict[str, Workflow]:
    """Every workflow, by name (the built-in packages first, then the extra ones)."""
    return _workflows(os.environ.get(EXTRA_ENV, "") if extra is None else extra)


def workflow(name: str) -> Workflow:
    try:
        return workflows()[name]
    except KeyError:
        raise UnknownWorkflow(f"no workflow named {name!r}") from None


def routes(extra: str | None = None) -> dict[tuple[str, str], str]:
    """The routing table: (source, event type) -> the workflow it starts (its triggers, its schedules' firings,
    its tables' status changes)."""
    table: dict[tuple[str, str], str] = {}
    for wf in workflows(extra).values():
        for key, verb in _keys(wf):
            if verb == "starts":
                table[key] = wf.name
    return table


def trigger(source: str, event_type: str, extra: str | None = None) -> Trigger | None:
    """The webhook trigger declared for (source, event type), if any (its ``correlation`` says whether its events
    join a running run)."""
    for wf in workflows(extra).values():
        for t in wf.triggers:
            if (t.source, t.event_type) == (source, event_type):
                return t
    return None


def resumer(source: str, event_type: str, extra: str | None = None) -> tuple[Workflow, Resumer] | None:
    """The workflow whose wait an event of (source, event type) ends, and how it is matched; None: no wait takes
    it."""
    for wf in workflows(extra).values():
        for r in wf.resumers:
            if (r.source, r.event_type) == (source, event_type):
                return wf, r
    return None


def settings_problems(workflows: Iterable[Workflow], value: Callable[[str], str]) -> list[str]:
    """What each workflow's ``settings_check`` finds wrong with its settings' values (``value(name)``), each
    sentence naming its workflow: `make run` and the synthesis refuse to start on any."""
    problems: list[str] = []
    for workflow in workflows:
        if workflow.settings_check:
            # Imported here, not through the worker's loader: `make run` checks before it configures logging, so
            # nothing that sets up the functions' logger may be loaded yet.
            module, _, name = workflow.settings_check.partition(":")
            check = getattr(importlib.import_module(module), name, None)
            if not callable(check):
                raise WorkflowError(f"workflow {workflow.name!r}: settings_check {workflow.settings_check!r} names "
                                    "no function")
            values = {setting: value(setting) for setting in workflow.settings}
            problems += [f"workflow {workflow.name!r}: {problem}" for problem in check(values)]
    return problems


def clear() -> None:
    """Forget the loaded workflows (a new deployment, or a test that adds a package)."""
    _workflows.cache_clear()
