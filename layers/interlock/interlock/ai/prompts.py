"""Versioned prompts and domain policies, kept as files; a prompt's hash is recorded with every attempt.

A workflow package keeps its prompts in ``prompts/<name>.v<N>.md`` and its policies (the domain layer) in
``policies/<name>.md`` (``interlock/workflows/<workflow>/``; a decision point names its package's folder). A
change to a prompt is a new version (a new file), so the timeline's ``prompt_version`` always names the words
the model saw; ``prompt_hash`` (sha256 of the file) proves it. The directory ``INTERLOCK_AI_POLICY_DIR`` names
replaces a package's policy when it holds one of that name, so operators can keep their own business rules
(:func:`interlock.ai.runner.policy_dir`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_VERSIONED = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.md$")


class PromptNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str  # "v3"
    text: str
    sha256: str


@cache
def load_prompt(name: str, version: int | None = None, *, directory: Path) -> Prompt:
    versions: dict[int, Path] = {}
    for path in directory.glob(f"{name}.v*.md"):
        match = _VERSIONED.match(path.name)
        if match and match["name"] == name:
            versions[int(match["version"])] = path
    if not versions:
        raise PromptNotFound(f"no prompt {name!r} in {directory}")
    chosen = max(versions) if version is None else version
    if chosen not in versions:
        raise PromptNotFound(f"prompt {name!r} has no version {chosen} (has {sorted(versions)})")
    raw = versions[chosen].read_bytes()
    return Prompt(name=name, version=f"v{chosen}", text=raw.decode("utf-8").strip(),
                  sha256=hashlib.sha256(raw).hexdigest())


@cache
def load_policy(name: str, directory: str | Path) -> str:
    path = Path(directory) / f"{name}.md"
    if not path.is_file():
        raise PromptNotFound(f"no policy {name!r} at {path}")
    return path.read_text("utf-8").strip()
