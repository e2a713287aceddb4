"""The four context layers a model sees, each with a size budget.

* **system**: who the model is, what it can and cannot do (the versioned prompt);
* **domain**: this workflow's business rules and policies (configuration files);
* **session**: this run's history and state, and for conversations the earlier turns;
* **request**: this event's data.

Sizes are estimated tokens (four characters each, rounded up): close enough to keep a call inside a
model's window and a run inside its budget, with no tokenizer to load. Over budget, the oldest session
history goes first; a request over budget has its longest text fields shortened. Whatever was cut is
listed in :attr:`Context.trimmed`, which the timeline records. System and domain layers are configuration:
over budget they are an error, found by the tests that build every declared decision point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


class ContextTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Budgets:
    system: int = 1500
    domain: int = 2500
    session: int = 2000
    request: int = 3000


@dataclass(frozen=True)
class SessionItem:
    """One line of the session layer: a step of this run or an earlier turn of a conversation."""

    at: str
    kind: str  # "run" (the run's own history) or "turn" (an earlier message of the conversation)
    text: str

    def render(self) -> str:
        return f"[{self.at}] {self.kind}: {self.text}"


@dataclass(frozen=True)
class Context:
    messages: list[dict[str, str]]
    tokens: dict[str, int]
    budgets: dict[str, int]
    trimmed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())


def _shorten_request(request: Mapping[str, Any], budget: int) -> tuple[str, list[dict[str, Any]]]:
    data: Any = json.loads(json.dumps(request, default=str))
    trimmed: list[dict[str, Any]] = []
    text = json.dumps(data, ensure_ascii=False, indent=1)
    while estimate_tokens(text) > budget:
        longest = _longest_string(data, ())
        if longest is None:
            raise ContextTooLarge(f"the request layer needs {estimate_tokens(text)} tokens (budget {budget}) "
                                  "and has no text left to shorten")
        path, value = longest
        excess_chars = (estimate_tokens(text) - budget) * CHARS_PER_TOKEN
        keep = max(0, len(value) - excess_chars - 16)
        if keep >= len(value):
            keep = len(value) // 2
        _set(data, path, value[:keep] + " [shortened]")
        trimmed.append({"layer": "request", "field": ".".join(str(p) for p in path),
                        "chars_removed": len(value) - keep})
        text = json.dumps(data, ensure_ascii=False, indent=1)
    return text, trimmed


def _longest_string(data: Any, path: tuple[Any, ...]) -> tuple[tuple[Any, ...], str] | None:
    best: tuple[tuple[Any, ...], str] | None = None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = ((*path, key), value) if isinstance(value, str) and len(value) > 32 else \
            _longest_string(value, (*path, key))
        if found and (best is None or len(found[1]) > len(best[1])):
            best = found
    return best


def _set(data: Any, path: tuple[Any, ...], value: str) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _left_out(dropped: int) -> list[str]:
    if not dropped:
        return []
    return [f"({dropped} earlier item(s) of the conversation and this run's history were left out to fit the budget)"]


class ContextBuilder:
    def __init__(self, budgets: Budgets | None = None) -> None:
        self.budgets = budgets or Budgets()

    def build(self, system: str, domain: str, session: Sequence[SessionItem],
              request: Mapping[str, Any]) -> Context:
        b = self.budgets
        for name, text, budget in (("system", system, b.system), ("domain", domain, b.domain)):
            if estimate_tokens(text) > budget:
                raise ContextTooLarge(f"the {name} layer needs {estimate_tokens(text)} tokens, over its budget "
                                      f"of {budget}: shorten the prompt or policy file, or raise the budget")
        trimmed: list[dict[str, Any]] = []
        kept = list(session)
        lines = [item.render() for item in kept]
        dropped = 0
        # The note saying what was left out counts against the budget too (it used to be added after the check,
        # so a trimmed session layer came out over its budget).
        while kept and estimate_tokens("\n".join([*_left_out(dropped), *lines])) > b.session:
            gone = kept.pop(0)  # the oldest first
            lines.pop(0)
            dropped += 1
            trimmed.append({"layer": "session", "kind": gone.kind, "at": gone.at,
                            "tokens": estimate_tokens(gone.render())})
        lines = [*_left_out(dropped), *lines]
        session_text = "\n".join(lines) if lines else "(nothing before this request)"
        request_text, request_trimmed = _shorten_request(request, b.request)
        trimmed += request_trimmed
        messages = [
            {"role": "system", "content": f"{system}\n\n# Policies of this workflow\n\n{domain}"},
            {"role": "user", "content": f"# This run so far\n\n{session_text}\n\n# The request\n\n{request_text}"},
        ]
        return Context(
            messages=messages,
            tokens={"system": estimate_tokens(system), "domain": estimate_tokens(domain),
                    "session": estimate_tokens(session_text), "request": estimate_tokens(request_text)},
            budgets={"system": b.system, "domain": b.domain, "session": b.session, "request": b.request},
            trimmed=trimmed,
        )
