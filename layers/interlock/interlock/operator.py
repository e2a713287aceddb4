"""The operator's commands of the CLI (``interlock runs | show | approvals | redrive``): their HTTP client and what
they print.

* :class:`OperatorApi` calls the API, the local runtime by default. Given API Gateway's URL
  (``https://<id>.execute-api.<region>.amazonaws.com/<stage>``, or any URL with ``INTERLOCK_SIGV4_REGION`` set)
  it signs each request with SigV4 (``execute-api``) from the shell's AWS credentials, as the IAM-authorised
  routes require. botocore is imported only then.
* The tables fit the terminal's width: the subject takes what the other columns leave, and is cut with ``…``.
* Everything printed that came from the server goes through :func:`printable`: a terminal reads control
  characters as commands, and a run's subject is an outsider's text.

Only the standard library at import, as the rest of the CLI (httpx when a command calls).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

_API_GATEWAY = re.compile(r"[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")
SIGV4_REGION_VARIABLE = "INTERLOCK_SIGV4_REGION"


class OperatorError(Exception):
    """A problem the user can fix (no credentials, an answer that is an error): one line, no traceback."""


def printable(value: object, limit: int = 200) -> str:
    """``value`` as one line of at most ``limit`` characters, with every character a terminal could act on replaced."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() else "?" for c in text)


def sigv4_region(url: str) -> str | None:
    """The region to sign requests to ``url`` for, or None when they go unsigned (the local runtime)."""
    explicit = os.environ.get(SIGV4_REGION_VARIABLE, "").strip()
    if explicit:
        return explicit
    match = _API_GATEWAY.fullmatch(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def signed_headers(method: str, url: str, headers: Mapping[str, str] | None = None,
                   body: bytes = b"") -> dict[str, str]:
    """``headers`` with SigV4's (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) when ``url`` is
    signed for (:func:`sigv4_region`); as given otherwise."""
    headers = dict(headers or {})
    region = sigv4_region(url)
    if region is None:
        return headers
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise OperatorError(f"{urlsplit(url).hostname} is API Gateway's and its operator routes are IAM-authorised, "
                            "but the shell has no AWS credentials (set AWS_PROFILE, or run `aws sso login`)")
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


class OperatorApi:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        query = urlencode({k: v for k, v in (params or {}).items() if v}, quote_via=quote)
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The JSON object a ``GET`` answers; ``OperatorError`` with the API's own message for any error."""
        return self.request("GET", path, params)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON object a ``POST`` of the JSON ``body`` answers; errors as :meth:`get`."""
        return self.request("POST", path, body=json.dumps(body).encode())

    def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                body: bytes = b"") -> dict[str, Any]:
        import httpx

        url = self.url(path, params)
        headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if body else {})}
        try:
            response = httpx.request(method, url, headers=signed_headers(method, url, headers, body), content=body,
                                     timeout=60.0)
        except httpx.ConnectError as exc:
            raise OperatorError(f"nothing answers at {self.base}: is Interlock running? Start it with `interlock run` "
                                "(or `make run`), or pass --url") from exc
        except httpx.InvalidURL as exc:
            raise OperatorError(f"{self.base} is not a URL Interlock can be reached at: {exc}") from exc
        except httpx.HTTPError as exc:
            raise OperatorError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        if response.status_code == 403 and not answer.get("error"):
            raise OperatorError(f"{self.base} refused the request (403): on AWS the operator routes are "
                                "IAM-authorised; the credentials need execute-api:Invoke on them (docs/operators.md)")
        if not response.is_success:
            reason = answer.get("message") or response.text.strip()[:200] or response.reason_phrase
            raise OperatorError(f"{printable(reason)} ({response.status_code} "
                                f"{printable(answer.get('error') or response.reason_phrase, 60)})")
        return answer


# -- what the commands print ---------------------------------------------------------------------------------


def width() -> int:
    return max(60, shutil.get_terminal_size((120, 24)).columns)


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[:max(0, size - 1)] + "…"


def _moment(iso: object) -> str:
    """``2026-12-04T02:10:11.123456Z`` as ``2026-12-04 02:10:11`` (UTC)."""
    return printable(iso, 19).replace("T", " ")


def duration(seconds: int) -> str:
    """A duration as a person reads it: ``45s``, ``12m``, ``3h 05m``, ``2d 04h``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24:02d}h"


def table(rows: list[list[str]], headers: list[str], stretch: int, columns: int) -> list[str]:
    """Rows under ``headers``, two spaces apart; the column ``stretch`` takes what the others leave of
    ``columns`` (at least 10), cut with ``…``; the others as wide as their widest cell."""
    cells = [[printable(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    others = sum(w for i, w in enumerate(widths) if i != stretch) + 2 * (len(headers) - 1)
    widths[stretch] = max(10, min(widths[stretch], columns - others))
    lines = []
    for row in [headers, *cells]:
        parts = [_cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return lines


def runs_lines(runs: list[dict[str, Any]], columns: int) -> list[str]:
    """``interlock runs``: one line a run; narrower terminals leave out the source and the customer, then the year."""
    wide = columns >= 140
    year = 0 if columns >= 110 else 5
    headers = ["CREATED (UTC)", "STATUS", "WORKFLOW", *(["SOURCE"] if wide else []), "SUBJECT",
               *(["CUSTOMER"] if wide else []), "RUN"]
    rows = [[_moment(r.get("created_at"))[year:], str(r.get("status") or ""), str(r.get("workflow") or "-"),
             *([str(r.get("source") or "")] if wide else []), str(r.get("subject") or r.get("event_type") or ""),
             *([str(r.get("customer") or "")] if wide else []), str(r.get("run_id") or "")] for r in runs]
    return table(rows, headers, headers.index("SUBJECT"), columns)


def approvals_lines(approvals: list[dict[str, Any]], columns: int) -> list[str]:
    """``interlock approvals``: what waits for a person, oldest first, with how long it has waited and has left."""
    rows = []
    for a in approvals:
        age = a.get("age_seconds")
        left = a.get("seconds_left")
        due = "-" if not isinstance(left, int) else (duration(left) if left >= 0 else f"overdue {duration(left)}")
        rows.append([duration(age) if isinstance(age, int) else "-", due, str(a.get("workflow") or "-"),
                     str(a.get("subject") or ""), str(a.get("required") or "-"), str(a.get("run_id") or "")])
    return table(rows, ["WAITING", "DUE IN", "WORKFLOW", "SUBJECT", "NEEDS", "RUN"], 3, columns)


# An entry's details worth a line, in this order; anything else is in `interlock show --json`.
SHOW_FACTS = ("reason", "reasons", "outcome", "kind", "decision", "category", "priority", "confidence", "decided_by",
              "escalation", "tier", "model", "prompt", "prompt_version", "tokens", "cost_usd", "required",
              "approver", "decision_by", "expires_at", "workflow", "event_source", "event_type", "replay_of",
              "replayed_as", "joined_run_id", "correlation_key", "error", "message", "partial", "found")
# Details that hold what a model was sent: printed only with --prompts.
PROMPT_DETAILS = ("messages",)


def _fact(key: str, value: Any) -> str | None:
    if isinstance(value, bool | int | float):
        return f"{key}={value}"
    if isinstance(value, str):
        return f"{key}={printable(value, 80)}"
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
        return f"{key}=" + ",".join(printable(v, 40) for v in value[:5]) + (",…" if len(value) > 5 else "")
    return None


def entry_line(entry: Mapping[str, Any], start: datetime | None) -> str:
    """One line of a run's timeline: when (and how long after the run began), state, step (and its attempt), facts."""
    at = str(entry.get("at", ""))
    offset = ""
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        if start is not None:
            offset = f"+{(when - start).total_seconds():.1f}s"
        at = when.astimezone(UTC).strftime("%H:%M:%S")
    except ValueError:
        at = printable(at, 8)
    details: dict[str, Any] = entry["details"] if isinstance(entry.get("details"), dict) else {}
    facts = [f for k in SHOW_FACTS if k in details and (f := _fact(k, details[k]))]
    step = printable(entry.get("step", ""), 40)
    attempt = entry.get("attempt")
    if isinstance(attempt, int) and attempt > 0:
        step += f" #{attempt + 1}"
    return f"{at} {offset:>8}  {printable(entry.get('state', ''), 17):<17} {step:<24} {' '.join(facts)}".rstrip()


def show_lines(view: Mapping[str, Any], prompts: bool = False) -> list[str]:
    """``interlock show``: the run's head, then its timeline one line an entry (and with ``prompts``, what each
    decision sent its model, indented under its entry)."""
    created = str(view.get("created_at", ""))
    try:
        start: datetime | None = datetime.fromisoformat(created)
    except ValueError:
        start = None
    lines = [f"Run {printable(view.get('run_id'), 40)}  {printable(view.get('status'), 20)}"
             f"  workflow {printable(view.get('workflow') or '-', 40)}",
             f"  created {_moment(created)} UTC, last change {_moment(view.get('updated_at', ''))} UTC"]
    for link, label in (("replay_of", "replays run"), ("replayed_as", "replayed as run")):
        if view.get(link):
            lines.append(f"  {label} {printable(view[link], 40)}")
    timeline: list[Any] = view["timeline"] if isinstance(view.get("timeline"), list) else []
    lines.append("")
    for entry in timeline:
        if not isinstance(entry, dict):
            continue
        lines.append(entry_line(entry, start))
        details: dict[str, Any] = entry["details"] if isinstance(entry.get("details"), dict) else {}
        if prompts:
            for key in PROMPT_DETAILS:
                for message in details.get(key) or []:
                    if isinstance(message, dict):
                        text = json.dumps(message.get("content"), ensure_ascii=False)
                        lines.append(f"{'':>20}{printable(message.get('role', '?'), 12)}: {printable(text, 2000)}")
    if not prompts and any(isinstance(e, dict) and isinstance(e.get("details"), dict)
                           and any(k in e["details"] for k in PROMPT_DETAILS) for e in timeline):
        lines += ["", "(what the decisions sent their model: interlock show --prompts)"]
    return lines


def redrive_lines(messages: list[dict[str, Any]], columns: int) -> list[str]:
    """``interlock redrive``: one line a DLQ message: its kind, run and the run's status, the verdict, and what
    moving it back does (or did: ``done``)."""
    sent = columns >= 110  # narrower terminals leave out when it was sent, for the outcome
    rows = [[*([_moment(m.get("sent_at") or "")[5:] or "-"] if sent else []), str(m.get("kind") or ""),
             str(m.get("run_id") or "-"), str(m.get("run_status") or "-"), str(m.get("verdict") or ""),
             str(m.get("done") or m.get("action") or ""), str(m.get("outcome") or "")] for m in messages]
    headers = [*(["SENT (UTC)"] if sent else []), "KIND", "RUN", "STATUS", "VERDICT", "ACTION", "OUTCOME"]
    return table(rows, headers, len(headers) - 1, columns)
