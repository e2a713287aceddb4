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
from dataclasses import replace
from functools import cache
from pathlib import Path

from interlock.kit import Workflow

EXTRA_ENV = "INTERLOCK_EXTRA_WORKFLOWS"
BUILT_IN_PACKAGE = "interlock.workflows"
# A workflow's name is part of state machine and execution names, and of the workers' events.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class WorkflowError(ValueError):
    """A workflow package that cannot be used: no declaration, a bad or duplicate name, a trigger taken."""


class UnknownWorkflow(LookupError):
    pass


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


@cache
def _workflows(extra: str) -> dict[str, Workflow]:
    workflows: dict[str, Workflow] = {}
    triggers: dict[tuple[str, str], str] = {}
    for package in _packages(extra):
        workflow = load(package)
        if workflow.name in workflows:
            raise WorkflowError(f"two workflow packages are named {workflow.name!r}: "
                                f"{workflows[workflow.name].package} and {package}")
        for trigger in workflow.triggers:
            key = (trigger.source, trigger.event_type)
            if key in triggers:
                raise WorkflowError(f"{trigger.source} {trigger.event_type!r} starts both {triggers[key]!r} and "
                                    f"{workflow.name!r}: an event starts one workflow")
            triggers[key] = workflow.name
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
    """The routing table: (source, event type) -> the workflow it starts."""
    return {(t.source, t.event_type): wf.name for wf in workflows(extra).values() for t in wf.triggers}


def clear() -> None:
    """Forget the loaded workflows (a new deployment, or a test that adds a package)."""
    _workflows.cache_clear()
