"""The ``interlock`` command: ``run`` the embedded local cloud, ``send`` it a signed webhook, ``replay`` a run,
``upload`` a document too large for an event, ``trigger`` a schedule; for operators, ``runs``, ``show``,
``approvals``, ``watch``, ``resend`` and ``redrive`` (interlock.operator).

``send`` signs a sample the way the source's provider does, with the provider's plug-in's
``sender_headers`` (``interlock.webhooks.sources``), so what verifies here is what the provider sends.
It must start fast, so this module imports only the standard library at the top; the local cloud
(moto, boto3) is imported by ``run`` alone, and httpx and the plug-in by ``send`` when it sends.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from interlock.operator import OperatorError  # the standard library alone, as this module

DEFAULT_PORT = 8000
DEFAULT_STATE_DIR = ".interlock"
DEFAULT_SOURCE = "form"
DEFAULT_SAMPLE = "support_ticket"


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


# -- defaults from the environment -----------------------------------------------------------------------------


def _default_port() -> int:
    raw = os.environ.get("INTERLOCK_PORT", str(DEFAULT_PORT))
    try:
        return int(raw)
    except ValueError:
        raise CliError(f"INTERLOCK_PORT must be a port number, not {raw!r}") from None


def _default_state_dir() -> Path:
    return Path(os.environ.get("INTERLOCK_STATE_DIR", DEFAULT_STATE_DIR))


def _default_url() -> str:
    return os.environ.get("INTERLOCK_URL") or f"http://127.0.0.1:{_default_port()}"


# -- interlock run ---------------------------------------------------------------------------------------------


def _configure_logging() -> None:
    level = os.environ.get("INTERLOCK_LOG_LEVEL", "WARNING").upper()
    if not isinstance(logging.getLevelName(level), int):
        raise CliError(f"INTERLOCK_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    from interlock.log_safety import configure_console

    # One escaped line per record; the network libraries held at WARNING whatever the level (docs/logging.md).
    configure_console(level)
    # One line per request on the console, whatever the level of the rest.
    logging.getLogger("localcloud.gateway").setLevel(min(logging.INFO, logging.getLogger().level))


def run(args: argparse.Namespace) -> int:
    _configure_logging()
    from interlock.local.env import EnvironmentConflict, InvalidLocalSetting
    from interlock.local.persistence import StateFileError
    from interlock.local.runtime import LocalRuntime
    from interlock.local.secrets import SecretConfigError
    from interlock.topology import InvalidPublicBaseUrl, InvalidWebhookSource, UnknownWebhookSource

    port = args.port if args.port is not None else _default_port()
    state_dir = args.state_dir or _default_state_dir()
    try:
        LocalRuntime(port=port, state_dir=state_dir, fresh=getattr(args, "fresh", False)).serve_forever()
    except OSError as exc:
        raise CliError(f"could not listen on 127.0.0.1:{port}: {exc.strerror or exc}. Is Interlock already "
                       "running? Pick another port with --port or INTERLOCK_PORT.") from exc
    except (SecretConfigError, EnvironmentConflict, UnknownWebhookSource, InvalidWebhookSource,
            InvalidPublicBaseUrl, StateFileError, InvalidLocalSetting) as exc:
        raise CliError(str(exc)) from exc
    return 0


# -- interlock send --------------------------------------------------------------------------------------------

# A scheme's bundled samples are samples/<prefix>.json and samples/<prefix>_<name>.json, in interlock/samples/ and in
# every workflow package's samples/, where the prefix is the scheme's name, or for Standard Webhooks that of its
# built-in source, form. Any source of the scheme sends them.
SAMPLE_PREFIX = {"standard-webhooks": DEFAULT_SOURCE}
# the sample `interlock send <source>` posts when given none: <prefix>.json, or for Standard Webhooks this one
DEFAULT_SAMPLES = {"standard-webhooks": DEFAULT_SAMPLE}
# The schemes that send an event's (or delivery's) id in a header, which --id sets: scheme -> that header.
ID_HEADERS = {"standard-webhooks": "webhook-id", "github": "X-GitHub-Delivery"}
# The schemes whose event ids are in the payload, and where: --id cannot change those.
PAYLOAD_IDS = {
    "stripe": "its id, evt_…",
    "slack": "its event_id, Ev…",
    "whatsapp": "each message's and status's id, wamid.…",
    "hubspot": "each event's eventId",
}
# a header value: printable ASCII, no spaces
_HEADER_VALUE = re.compile(r"[\x21-\x7e]{1,255}")


def _sample_folders() -> list[Any]:
    """Where bundled samples are: ``interlock/samples/``, then each workflow package's ``samples/`` (by name)."""
    root = resources.files("interlock")
    folders = [root / "samples"]
    workflows = root / "workflows"
    if workflows.is_dir():
        folders += [package / "samples" for package in sorted(workflows.iterdir(), key=lambda p: p.name)
                    if package.is_dir() and (package / "samples").is_dir()]
    return folders


def _scheme_samples(scheme: str) -> dict[str, Any]:
    """The bundled samples of ``scheme``, by the names ``interlock send`` takes for them (a workflow package's
    samples are named the same way; the first folder holding a name keeps it)."""
    prefix = SAMPLE_PREFIX.get(scheme, scheme)
    found: dict[str, Any] = {}
    for folder in _sample_folders():
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            stem = entry.name.removesuffix(".json")
            if entry.name.endswith(".json") and (stem == prefix or stem.startswith(f"{prefix}_")):
                found.setdefault(stem.removeprefix(f"{prefix}_"), entry)
    return found


def _load_body(source: str, scheme: str, file: str | None, event_type: str | None) -> bytes:
    """The bytes to send: a file as it is (unless --type changes it), or a bundled sample (a Standard
    Webhooks sample stamped with the time)."""
    if event_type is not None and scheme != "standard-webhooks":
        raise CliError(f"--type applies to Standard Webhooks sources; a {scheme} event's type is part of the "
                       "provider's payload: send a file with the type you want")
    if file is not None and Path(file).is_file():
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
        return raw if event_type is None else _with(raw, file, {"type": event_type})
    name = file or DEFAULT_SAMPLES.get(scheme, SAMPLE_PREFIX.get(scheme, scheme))
    samples = _scheme_samples(scheme)
    key = name.removesuffix(".json").removeprefix(f"{SAMPLE_PREFIX.get(scheme, scheme)}_")
    entry = samples.get(key)
    if entry is None:
        names = ", ".join(sorted(samples)) or "none"
        raise CliError(f"no file or sample named {name!r}; the samples for {source!r} are: {names}")
    if scheme != "standard-webhooks":
        return bytes(entry.read_bytes())  # exactly the provider's bytes
    changes: dict[str, Any] = {"timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")}
    if event_type is not None:
        changes["type"] = event_type
    return _with(entry.read_bytes(), name, changes)


def _with(raw: bytes, origin: str, changes: dict[str, Any]) -> bytes:
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise CliError(f"{origin} is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise CliError(f"{origin} must hold a JSON object to set its {', '.join(changes)}")
    payload.update(changes)
    return json.dumps(payload, separators=(",", ":")).encode()


def _source_secrets(source: str, scheme: str, state_dir: Path) -> Any:
    from interlock.local.secrets import SECRETS_FILE, SecretConfigError, env_var, lookup

    try:
        found = lookup(state_dir, source, scheme)
    except SecretConfigError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot read {state_dir / SECRETS_FILE}: {exc.strerror or exc}") from exc
    if not found:
        raise CliError(f"no webhook secret for {source!r}: set {env_var(source)}, or start `interlock run` "
                       f"once so that it writes {state_dir / SECRETS_FILE} (pass --state-dir if it uses another)")
    return found


def _known_sources() -> dict[str, str]:
    """The topology's webhook sources, with the ones ``INTERLOCK_EXTRA_WEBHOOK_SOURCES`` adds: ``{name: scheme}``."""
    from interlock.topology import TOPOLOGY, InvalidWebhookSource

    try:
        topology = TOPOLOGY.with_extra_webhook_sources(os.environ.get("INTERLOCK_EXTRA_WEBHOOK_SOURCES", ""))
    except InvalidWebhookSource as exc:
        raise CliError(str(exc)) from exc
    return {s.name: s.scheme for s in topology.webhook_sources}


def _source_and_file(source: str | None, file: str | None, known: dict[str, str]) -> tuple[str, str | None]:
    """``interlock send refund_request`` and ``interlock send my.json`` mean the default source."""
    default_samples = _scheme_samples(known[DEFAULT_SOURCE])
    looks_like_a_file = source is not None and (
        Path(source).is_file() or source.removesuffix(".json").removeprefix(f"{DEFAULT_SOURCE}_") in default_samples)
    if source is not None and file is None and source not in known and looks_like_a_file:
        return DEFAULT_SOURCE, source
    return source or DEFAULT_SOURCE, file


def _scheme_module(scheme: str) -> Any:
    """The scheme's plug-in, whose ``sender_headers`` signs as the provider does (a seam for the tests)."""
    from interlock.webhooks.registry import scheme_module

    return scheme_module(scheme)


# Who writes a message `interlock send --text` makes, unless --from says: a WhatsApp user (wa_id) whose sales orders the
# local fake ERP holds, and a Slack user.
TEXT_SENDERS = {"whatsapp": "447700900123", "slack": "U061F7AUR"}
_WA_ID = re.compile(r"^[1-9][0-9]{5,14}$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def _message_body(scheme: str, text: str, sender: str | None) -> bytes:
    """A new message from the source's sample: ``text`` written now by ``sender`` (WhatsApp: a wa_id; Slack: a user
    id, mentioning the app), with a fresh id, so that each send is a new event (a conversation's next turn)."""
    if scheme not in TEXT_SENDERS:
        raise CliError(f"--text makes a WhatsApp or Slack message; a {scheme} event is sent from a file or sample")
    if not text.strip() or len(text) > 4096:
        raise CliError("--text is 1 to 4096 characters")
    who = sender or TEXT_SENDERS[scheme]
    if not (_WA_ID if scheme == "whatsapp" else _SLACK_USER).fullmatch(who):
        kind = "a wa_id (the phone number in digits, no +)" if scheme == "whatsapp" else "a Slack user id (U…)"
        raise CliError(f"--from is {kind}, not {who[:40]!r}")
    sample = json.loads(_scheme_samples(scheme)[scheme].read_bytes())
    now = time.time()
    if scheme == "whatsapp":
        change = next(c for e in sample["entry"] for c in e["changes"] if c["value"].get("messages"))
        value = change["value"]
        value["contacts"] = [{"profile": {"name": "A customer"}, "wa_id": who}]
        value["messages"] = [{"from": who, "id": f"wamid.{secrets.token_hex(16)}", "timestamp": str(int(now)),
                              "type": "text", "text": {"body": text}}]
        sample["entry"] = [{"id": sample["entry"][0]["id"], "changes": [change]}]
    else:
        mention = _SLACK_MENTION.match(sample["event"]["text"])
        ts = f"{now:.6f}"
        sample["event"].update(text=f"{mention.group(0) if mention else ''}{text}", user=who, ts=ts, event_ts=ts)
        sample.update(event_id=f"Ev{secrets.token_hex(6).upper()}", event_time=int(now))
    return json.dumps(sample).encode()


_SLACK_MENTION = re.compile(r"^<@[A-Z0-9]+> ")


def _check_options(source: str, scheme: str, args: argparse.Namespace) -> None:
    """--id and --event apply to the schemes that send them in a header; say so for the others."""
    if args.id is not None:
        if scheme in PAYLOAD_IDS:
            raise CliError(f"{source!r} ({scheme}) identifies an event in its payload ({PAYLOAD_IDS[scheme]}), not "
                           "in a header, so --id does not apply: to send a new event, change that id in a copy of "
                           "the file and send the copy")
        if scheme not in ID_HEADERS:
            raise CliError(f"--id does not apply to {source!r} ({scheme})")
        if not _HEADER_VALUE.fullmatch(args.id):
            raise CliError(f"--id is sent in the {ID_HEADERS[scheme]} header: use printable ASCII with no spaces, "
                           f"not {args.id!r}")
    if args.event is not None:
        if scheme != "github":
            hint = " (set it with --type)" if scheme == "standard-webhooks" else ""
            raise CliError(f"--event applies to GitHub sources (the X-GitHub-Event header); a {scheme} event's "
                           f"type is part of its payload{hint}")
        if not _HEADER_VALUE.fullmatch(args.event):
            raise CliError(f"--event takes a GitHub event name such as push or issues, not {args.event!r}")


def _sign(module: Any, scheme: str, secret: str, body: bytes, *, origin: str, event_id: str, url: str,
          event: str | None) -> dict[str, str]:
    """The headers the provider sends with ``body``, from the plug-in's ``sender_headers``; a payload it cannot
    sign from is a :class:`CliError`."""
    if scheme == "github":
        _json_object(body, origin, "GitHub")  # GitHub's sender reads the payload to name its event
    extra = {} if event is None else {"event": event}
    try:
        return dict(module.sender_headers(secret, body, now=int(time.time()), event_id=event_id, url=url, **extra))
    except ValueError as exc:
        if scheme == "github" and event is None:  # the payload is a JSON object: its event could not be told
            raise CliError(f"cannot tell which GitHub event {origin} is from its top-level keys: pass --event "
                           "NAME, the X-GitHub-Event header GitHub would send (push, issues, pull_request, …)") from exc
        raise CliError(f"cannot sign {origin} as {scheme} does: {exc}") from exc


def _json_object(body: bytes, origin: str, provider: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CliError(f"{origin} is not JSON: {exc}; a {provider} payload is a JSON object") from exc
    if not isinstance(payload, dict):
        raise CliError(f"{origin} holds JSON that is not an object; a {provider} payload is a JSON object")
    return payload


def send(args: argparse.Namespace) -> int:
    known = _known_sources()
    source, file = _source_and_file(args.source, args.file, known)
    if source not in known:
        raise CliError(f"unknown webhook source {source!r}; the sources are: {', '.join(known)} (a further source "
                       "is declared with INTERLOCK_EXTRA_WEBHOOK_SOURCES=name=scheme, for `interlock run` and here)")
    scheme = known[source]
    base = (args.url or _default_url()).rstrip("/")
    endpoint = f"{base}/webhooks/{source}"
    state_dir = args.state_dir or _default_state_dir()
    _check_options(source, scheme, args)
    if args.handshake:
        if scheme != "whatsapp":
            raise CliError(f"{source!r} ({scheme}) has no GET handshake; --handshake is for WhatsApp sources")
        return _handshake(source, scheme, endpoint, _source_secrets(source, scheme, state_dir))
    if args.text is not None:
        if file is not None:
            raise CliError("--text makes the message itself: give it or a file, not both")
        body = _message_body(scheme, args.text, args.sender)
    elif args.sender is not None:
        raise CliError("--from goes with --text (the sender of the message it makes)")
    else:
        body = _load_body(source, scheme, file, args.type)
    source_secrets = _source_secrets(source, scheme, state_dir)
    # Only a header-borne id is ours to choose; the other schemes' ids are in the body, and the plug-in ignores this.
    event_id = args.id or (f"msg_{secrets.token_urlsafe(18)}" if scheme == "standard-webhooks" else str(uuid.uuid4()))
    # The provider's own signing, from the source's plug-in: what it signs (the body, a timestamp, the URL
    # posted to) and the headers it sends.
    signed = _sign(_scheme_module(scheme), scheme, source_secrets.signing[0], body,
                   origin=file or f"the {scheme} sample", event_id=event_id, url=endpoint, event=args.event)

    import httpx

    headers = httpx.Headers(signed)  # the provider's own Content-Type and User-Agent, where it sends them
    headers.setdefault("Content-Type", "application/json")
    headers.setdefault("User-Agent", "interlock-send")
    response = _call("POST", endpoint, base, content=body, headers=headers)
    # The id sent in a header, as sent (GitHub's plug-in makes a GUID of an --id that is not one); an id in the
    # body is in the answer printed below.
    id_header = ID_HEADERS.get(scheme)
    sent_id = headers.get(id_header) if id_header else None
    print(f"POST {endpoint}  ({scheme}" + (f", {id_header} {sent_id}" if sent_id else "") + ")")
    _report(base, response)
    if scheme == "hubspot" and response.status_code == 401:
        print(f"HubSpot signs the URL it calls ({endpoint}): it must be exactly the runtime's public URL "
              "(INTERLOCK_PUBLIC_BASE_URL, locally http://127.0.0.1:<port>) + /webhooks/<source>.")
    return 0 if response.is_success else 1


def _handshake(source: str, scheme: str, endpoint: str, source_secrets: Any) -> int:
    """WhatsApp (Meta) verifies a webhook URL with a GET before it sends any event: answer its challenge."""
    token = source_secrets.extras.get("verify_token")
    if not token:
        raise CliError(f"the {source!r} secret has no verify_token: store it as JSON "
                       '{"signing": ["<app secret>"], "verify_token": "<token>"}')
    challenge = str(secrets.randbelow(10**9))
    params = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}
    response = _call("GET", endpoint, endpoint.rsplit("/webhooks/", 1)[0], params=params)
    print(f"GET {endpoint}?hub.mode=subscribe&hub.verify_token=…&hub.challenge={challenge}")
    print(f"-> {response.status_code} {response.reason_phrase}")
    if response.is_success and response.text == challenge:
        print("The challenge came back: Meta would accept this callback URL and verify token.")
        return 0
    print(response.text)
    return 1


def _call(method: str, endpoint: str, base: str, **kwargs: Any) -> Any:
    import httpx

    try:
        return httpx.request(method, endpoint, timeout=15.0, **kwargs)
    except httpx.ConnectError as exc:
        raise CliError(f"nothing answers at {base}: is Interlock running? Start it with `interlock run` "
                       "(or `make run`), or pass --url") from exc
    except httpx.InvalidURL as exc:  # not an HTTPError
        raise CliError(f"{base} is not a URL Interlock can be reached at: {exc}") from exc
    except httpx.HTTPError as exc:
        raise CliError(f"{method} {endpoint} failed: {type(exc).__name__}: {exc}") from exc


def _report(base: str, response: Any) -> None:
    print(f"-> {response.status_code} {response.reason_phrase}")
    try:
        answer = response.json()
    except ValueError:
        print(response.text)
        return
    print(json.dumps(answer, indent=2))
    if not isinstance(answer, dict):
        return
    events: list[Any] = answer["events"] if isinstance(answer.get("events"), list) else [answer]
    run_ids = [e["run_id"] for e in events if isinstance(e, dict) and e.get("run_id")]
    if run_ids:
        print("\nWatch the run" + ("s" if len(run_ids) > 1 else "") + ":")
        for run_id in run_ids:
            print(f"  curl -s {base}/runs/{run_id}")


# -- interlock replay ------------------------------------------------------------------------------------------


def replay(args: argparse.Namespace) -> int:
    """``POST /runs/<run_id>/replay``: the run's kept event, started again as a new run (docs/replay.md)."""
    from urllib.parse import quote

    base = (args.url or _default_url()).rstrip("/")
    endpoint = f"{base}/runs/{quote(args.run_id, safe='')}/replay"
    from interlock.operator import signed_headers

    response = _call("POST", endpoint, base, headers=signed_headers("POST", endpoint))
    answer = _answer_object(response)
    if not response.is_success:
        if response.status_code == 403 and not answer.get("error"):
            raise CliError(f"{base} refused the replay ({response.status_code}): on AWS the route is IAM-authorised; "
                           "the credentials need execute-api:Invoke on it (docs/replay.md)")
        reason = answer.get("message") or response.text.strip()[:200] or response.reason_phrase
        raise CliError(f"cannot replay {args.run_id}: {reason} ({response.status_code} "
                       f"{answer.get('error') or response.reason_phrase})")
    new_run = answer.get("run_id")
    print(f"Run {args.run_id} replayed as run {new_run}.")
    print(f"Watch it:\n  curl -s {base}/runs/{new_run}")
    return 0


# -- interlock upload ------------------------------------------------------------------------------------------


def _content_type(path: Path, data: bytes, given: str | None) -> str:
    if given:
        return given
    if path.suffix.lower() == ".pdf" or data.startswith(b"%PDF-"):
        return "application/pdf"
    if path.suffix.lower() in (".txt", ".text"):
        return "text/plain"
    raise CliError(f"cannot tell the type of {path}: uploads are PDF or UTF-8 text; pass --content-type "
                   "application/pdf or text/plain")


def upload(args: argparse.Namespace) -> int:
    """``POST /uploads`` signed with the form source's secret, then the PUT to the URL it answers: what a sender does
    with a document too large for an event's body. The reference alone goes to standard output."""
    from interlock.topology import UPLOAD_SOURCE

    base = (args.url or _default_url()).rstrip("/")
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise CliError(f"{path} is empty")
    content_type = _content_type(path, data, args.content_type)
    source_secrets = _source_secrets(UPLOAD_SOURCE, "standard-webhooks", args.state_dir or _default_state_dir())
    from interlock.webhooks.standard import signed_headers

    body = json.dumps({"content_type": content_type, "size": len(data)}).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "interlock-upload",
               **signed_headers(source_secrets.signing[0], f"msg_{secrets.token_urlsafe(18)}", int(time.time()), body)}
    response = _call("POST", f"{base}/uploads", base, content=body, headers=headers)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 201 or not isinstance(answer, dict):
        reason = answer.get("message") if isinstance(answer, dict) else response.text.strip()[:200]
        raise CliError(f"POST {base}/uploads refused the upload: {reason} ({response.status_code})")
    # The URL is a credential for this one PUT: used, never printed.
    put = _call("PUT", answer["url"], base, content=data, headers=answer["headers"])
    if not put.is_success:
        code = re.search(r"<Code>([^<]{1,100})</Code>", put.text)
        raise CliError(f"the upload's PUT was refused: {code.group(1) if code else put.reason_phrase} "
                       f"({put.status_code})")
    print(f"Uploaded {path} ({len(data)} bytes, {answer['content_type']}); refer to it in an event as "
          f'"document": {{"upload": "{answer["upload"]}"}}', file=sys.stderr)
    print(answer["upload"])
    return 0


# -- interlock trigger ------------------------------------------------------------------------------------------


def _answer_object(response: Any) -> dict[str, Any]:
    """The answer's JSON object; an empty one for anything else (an HTML error page, a list, no body)."""
    return _json_data(response.text)


def trigger(args: argparse.Namespace) -> int:
    """Fire a schedule now: ``POST /_local/scheduler/trigger`` on the running local runtime."""
    base = (args.url or _default_url()).rstrip("/")
    endpoint = f"{base}/_local/scheduler/trigger"
    response = _call("POST", endpoint, base, json={"schedule": args.schedule})
    answer = _answer_object(response)
    if response.status_code == 404 and answer.get("error") != "unknown_schedule":
        raise CliError(f"{base} has no local scheduler: `interlock trigger` talks to `interlock run` (a deployment's "
                       "schedules are EventBridge Scheduler's)")
    if not response.is_success:
        reason = answer.get("message") or response.text.strip()[:200] or response.reason_phrase
        raise CliError(f"cannot fire {args.schedule!r}: {reason}")
    print(f"Schedule {answer.get('schedule')} fired for {answer.get('scheduled_time')}: run {answer.get('run_id')}")
    print(f"Watch it:\n  curl -s {base}/runs/{answer.get('run_id')}")
    return 0


# -- interlock watch ------------------------------------------------------------------------------------------

# What a watched entry's line shows of its details: codes and outcomes, never the data itself.
WATCH_FACTS = ("kind", "reason", "outcome", "category", "confidence", "decided_by", "escalation", "partial", "found")
# Consecutive failed connections before watch gives up (each after the stream's retry delay).
WATCH_ATTEMPTS = 5


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-Sent Events from a stream's lines: one dict per event (``id``, ``event``, ``data``, ``retry``; a
    comment as ``comment``), as the EventSource spec reads them (``data`` lines joined by newlines)."""
    fields: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if not name:
            fields["comment"] = value
        elif name == "data" and "data" in fields:
            fields["data"] += "\n" + value
        else:
            fields[name] = value
    if fields:
        yield fields


def _entry_line(data: str) -> str:
    try:
        entry = json.loads(data)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return f"(an entry that is not a JSON object: {data[:80]!r})"
    details: dict[str, Any] = entry["details"] if isinstance(entry.get("details"), dict) else {}
    facts = [f"{k}={details[k]}" for k in WATCH_FACTS if isinstance(details.get(k), str | int | float | bool)]
    at = str(entry.get("at", ""))[11:19]
    text = f"{at}  {entry.get('step', '')!s:<22} {entry.get('state', '')!s:<17} {' '.join(facts)}"
    # a terminal reads control characters as commands: a value from the server never carries one through
    return "".join(c if c.isprintable() else "?" for c in text).rstrip()


def _json_data(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def watch(args: argparse.Namespace) -> int:
    """Follow a run's timeline from ``GET /runs/<run_id>/events`` until it ends, reconnecting after the last entry
    seen (``Last-Event-ID``): each entry printed once, as it is written."""
    import httpx

    from interlock.operator import signed_headers

    base = (args.url or _default_url()).rstrip("/")
    endpoint = f"{base}/runs/{quote(args.run_id, safe='')}/events"
    last: str | None = args.after
    failures, retry = 0, 1.0
    while True:
        headers = signed_headers("GET", endpoint, {"Accept": "text/event-stream",
                                                   **({"Last-Event-ID": last} if last else {})})
        try:
            with httpx.stream("GET", endpoint, headers=headers, timeout=httpx.Timeout(60.0, connect=5.0)) as response:
                if response.status_code != 200:
                    response.read()
                    answer = _answer_object(response)
                    reason = answer.get("message") or response.text.strip()[:200] or response.reason_phrase
                    if response.status_code < 500:
                        raise CliError(f"cannot watch run {args.run_id[:100]!r}: {reason}")
                    raise httpx.HTTPError(f"{response.status_code} {reason}")
                failures = 0
                for event in sse_events(response.iter_lines()):
                    if "retry" in event and event["retry"].isdigit():
                        retry = int(event["retry"]) / 1000
                    if event.get("event") in ("entry", "delta") and event.get("id"):
                        last = event["id"]
                        if event["event"] == "entry":  # a delta is a model's words: never printed here
                            print(_entry_line(event.get("data", "")), flush=True)
                    elif event.get("event") == "end":
                        end = _json_data(event.get("data", ""))
                        status = "".join(c for c in str(end.get("status", "?"))[:40] if c.isprintable())
                        print(f"Run {args.run_id} ended {status}.")
                        return 0
        except httpx.ConnectError as exc:
            failures += 1
            if failures >= WATCH_ATTEMPTS:
                raise CliError(f"nothing answers at {base}: is Interlock running? Start it with `interlock run` "
                               "(or `make run`), or pass --url") from exc
            time.sleep(retry)
        except httpx.HTTPError as exc:  # a dropped stream, a timeout, a 5xx: resume after the last entry seen
            failures += 1
            if failures >= WATCH_ATTEMPTS:
                raise CliError(f"the stream of run {args.run_id[:100]!r} keeps failing: {exc}") from exc
            time.sleep(retry)


# -- interlock runs | show | approvals (interlock.operator) ------------------------------------------------------


def _pages(args: argparse.Namespace, path: str, key: str,
           params: dict[str, str | None]) -> tuple[list[Any], str | None]:
    """The list at ``path`` from ``--cursor``; with ``--all``, every page after it (progress on stderr)."""
    from interlock.operator import OperatorApi

    api = OperatorApi(args.url or _default_url())
    found: list[Any] = []
    cursor = args.cursor
    while True:
        answer = api.get(path, {k: v for k, v in {**params, "cursor": cursor}.items() if v})
        page = answer.get(key)
        found += page if isinstance(page, list) else []
        cursor = answer.get("cursor") if isinstance(answer.get("cursor"), str) else None
        if not (args.all and cursor):
            return found, cursor
        print(f"... {len(found)} so far", file=sys.stderr, flush=True)


def runs(args: argparse.Namespace) -> int:
    """``GET /runs``: the runs the filters match, newest first, as a table (docs/operators.md)."""
    from interlock import operator

    found, cursor = _pages(args, "/runs", "runs", {
        "status": args.status, "workflow": args.workflow, "source": args.source, "since": args.since,
        "until": args.until, "q": args.search, "limit": str(args.limit) if args.limit else None,
        "order": "oldest" if args.oldest else None})
    if args.json:
        print(json.dumps({"runs": found, "cursor": cursor}, indent=2))
        return 0
    if not found:
        print("No runs match." if cursor is None else "No runs match on this page.")
    else:
        print("\n".join(operator.runs_lines(found, operator.width())))
    if cursor:
        print(f"\nMore: add --cursor {cursor} (or --all) to the same command.")
    return 0


def show(args: argparse.Namespace) -> int:
    """``GET /runs/<run_id>``: the run's timeline, one line an entry."""
    from interlock import operator

    view = operator.OperatorApi(args.url or _default_url()).get(f"/runs/{quote(args.run_id, safe='')}")
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        print("\n".join(operator.show_lines(view, prompts=args.prompts)))
    return 0


def approvals(args: argparse.Namespace) -> int:
    """``GET /approvals``: what waits for a person, oldest first."""
    from interlock import operator

    found, cursor = _pages(args, "/approvals", "approvals", {"limit": str(args.limit) if args.limit else None})
    if args.json:
        print(json.dumps({"approvals": found, "cursor": cursor}, indent=2))
        return 0
    if not found:
        print("Nothing waits for a person.")
    else:
        print("\n".join(operator.approvals_lines(found, operator.width())))
    if cursor:
        print(f"\nMore: add --cursor {cursor} (or --all) to the same command.")
    return 0


# -- interlock resend (interlock.approval_resend) ---------------------------------------------------------------


def resend(args: argparse.Namespace) -> int:
    """``POST /runs/<run_id>/approvals/resend``: a lost approval email sent again, as a new link."""
    from interlock import operator

    answer = operator.OperatorApi(args.url or _default_url()).post(
        f"/runs/{quote(args.run_id, safe='')}/approvals/resend", {"approver": args.approver} if args.approver else {})
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    sent: list[Any] = answer["resent_to"] if isinstance(answer.get("resent_to"), list) else []
    print(f"Sent a new approval link for run {operator.printable(args.run_id, 40)} to "
          f"{', '.join(operator.printable(a, 80) for a in sent)}; the older links to them no longer work. "
          f"Deadline: {operator.printable(answer.get('deadline'), 40)}.")
    return 0


# -- interlock redrive (interlock.dead_letters) -----------------------------------------------------------------


def redrive(args: argparse.Namespace) -> int:
    """``POST /dlqs/<dlq>/redrive``: each DLQ message planned (``--dry-run``: nothing moves) or acted on, a batch
    at a time until nothing is left that can move (docs/operators.md)."""
    from interlock import operator

    api = operator.OperatorApi(args.url or _default_url())
    path = f"/dlqs/{quote(args.dlq, safe='')}/redrive"
    limit = args.limit or 100
    if args.dry_run:
        report = api.post(path, {"dry_run": True, "limit": limit})
        reports = [report]
    else:
        reports = []
        while True:
            report = api.post(path, {"dry_run": False, "limit": limit})
            reports.append(report)
            acted = int(report.get("moved") or 0) + int(report.get("removed") or 0)
            if not (report.get("more") and acted and args.all):
                break
            print(f"... {sum(int(r.get('moved') or 0) for r in reports)} moved, "
                  f"{sum(int(r.get('removed') or 0) for r in reports)} removed so far", file=sys.stderr, flush=True)
    # A message kept by one batch is read again by the next: its last plan stands.
    batches: list[list[Any]] = [r["messages"] for r in reports if isinstance(r.get("messages"), list)]
    messages = list({str(m.get("message_id")): m for batch in batches for m in batch if isinstance(m, dict)}.values())
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else {"batches": reports}, indent=2))
        return 0 if not any(r.get("failed") for r in reports) else 1
    last = reports[-1]
    depth = int(reports[0].get("depth") or 0)
    name = operator.printable(args.dlq, 64)
    if not messages:
        print(f"The {name} DLQ is empty.")
        return 0
    print(f"The {name} DLQ holds {depth} message{'s' if depth != 1 else ''}"
          + (f"; the first {len(messages)}:" if args.dry_run and last.get("more") else ":"))
    print("\n".join(operator.redrive_lines(messages, operator.width())))
    counts: dict[str, int] = {}
    for message in messages:
        key = str(message.get("done") or message.get("verdict"))
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    if args.dry_run:
        print(f"\nDry run, nothing moved: {summary}. Redrive them: interlock redrive --dlq {name}")
    else:
        print(f"\nRedriven: {summary}." + ("\nMore remain: run it again (or add --all)." if last.get("more") and not
                                         args.all else ""))
    return 0 if not any(r.get("failed") for r in reports) else 1


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise CliError(f"{flag} takes NAME=VALUE, not {value!r}")
        if name in pairs:
            raise CliError(f"{flag} names {name!r} twice")
        pairs[name] = text
    return pairs


def _local_table_answer(response: Any, base: str, table: str) -> dict[str, Any]:
    answer = _answer_object(response)
    if response.status_code == 404 and answer.get("error") not in ("unknown_table", "unknown_item"):
        raise CliError(f"{base} has no local tables: `interlock change` talks to `interlock run` (on AWS, a "
                       "workflow's table is changed by whatever owns its records)")
    if not response.is_success:
        reason = answer.get("message") or response.text.strip()[:200] or response.reason_phrase
        raise CliError(f"cannot change the {table} record: {reason}")
    return answer


CHANGE_WAIT_SECONDS = 10.0  # how long `interlock change` waits for the stream to read the change


def change(args: argparse.Namespace) -> int:
    """Change attributes of a record in a workflow table on the running local runtime (``PATCH
    /_local/tables/<table>/items``), as another system of record would, then wait for the local stream to read the
    change and print the status change it matched and the run it started (or that it matched none)."""
    base = (args.url or _default_url()).rstrip("/")
    key, changes = _pairs(args.key, "--key"), _pairs(args.set, "--set")
    tables = f"{base}/_local/tables/{args.table}"
    before = _local_table_answer(_call("GET", f"{tables}/changes", base), base, args.table)
    seen = {c.get("sequence_number") for c in before.get("changes", []) if isinstance(c, dict)}
    answer = _local_table_answer(_call("PATCH", f"{tables}/items", base, json={"key": key, "set": changes}),
                                 base, args.table)
    raw = answer.get("item")
    item = raw if isinstance(raw, dict) else {}
    print(f"{args.table} {' '.join(f'{k}={v}' for k, v in key.items())}: "
          + ", ".join(f"{name}={item.get(name)!r}" for name in changes))
    deadline = time.monotonic() + CHANGE_WAIT_SECONDS
    while True:
        read = _local_table_answer(_call("GET", f"{tables}/changes", base), base, args.table)
        mine = [c for c in read.get("changes", []) if isinstance(c, dict) and c.get("sequence_number") not in seen
                and c.get("keys") == key and c.get("event_name") == "MODIFY"]
        if mine:
            # The first change of the record after ours is ours: the run it starts may change the record again
            # (a payment scheduled moves it on) before the stream is read.
            record = mine[0]
            if record.get("run_id"):
                print(f"Stream record {record.get('sequence_number')} is the status change "
                      f"{', '.join(record.get('status_changes') or [])}: run {record['run_id']}")
                print(f"Watch it:\n  curl -s {base}/runs/{record['run_id']}")
            else:
                print(f"Stream record {record.get('sequence_number')} matched no status change: no run started")
            return 0
        if time.monotonic() > deadline:
            raise CliError(f"the record changed, but the table's stream did not show the change within "
                           f"{CHANGE_WAIT_SECONDS:.0f} s (is {args.table} a table a status change watches?)")
        time.sleep(0.2)


# -- the parser ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock", description="Interlock on a laptop: run the embedded local cloud, send it signed webhooks, "
                                      "replay runs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_cmd = commands.add_parser("run", help="start Interlock on the embedded local cloud")
    run_cmd.add_argument("--port", type=int, default=None,
                         help=f"port to listen on (default: INTERLOCK_PORT or {DEFAULT_PORT})")
    run_cmd.add_argument("--state-dir", type=Path, default=None,
                         help=f"where secrets, the mail outbox and the saved runs live (default: INTERLOCK_STATE_DIR "
                              f"or {DEFAULT_STATE_DIR})")
    run_cmd.add_argument("--fresh", action="store_true",
                         help="start clean: discard the saved runs, approvals and queued events (state/ in the state "
                              "directory); secrets and the outbox are kept")
    run_cmd.set_defaults(func=run)

    send_cmd = commands.add_parser(
        "send", help="send a webhook source a sample (or a file), signed the way its provider signs")
    send_cmd.add_argument("source", nargs="?", metavar="SOURCE",
                          help=f"webhook source: form, stripe, slack, whatsapp, hubspot, github (default: "
                               f"{DEFAULT_SOURCE})")
    send_cmd.add_argument("file", nargs="?", metavar="FILE",
                          help="a file, sent byte for byte, or a bundled sample name (default: the source's "
                               f"sample; {DEFAULT_SAMPLE} for form)")
    send_cmd.add_argument("--handshake", action="store_true",
                          help="WhatsApp: make Meta's GET verification request with the stored verify token")
    send_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                        f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    send_cmd.add_argument("--id", help="Standard Webhooks and GitHub: the id sent in the webhook-id or "
                                       "X-GitHub-Delivery header (for GitHub, a GUID made from it unless it is "
                                       "one); reuse one to see deduplication. The other providers' ids are in "
                                       "the payload")
    send_cmd.add_argument("--event", metavar="NAME",
                          help="GitHub sources: the X-GitHub-Event header (default: told from the payload)")
    send_cmd.add_argument("--type", help="Standard Webhooks sources: override the payload's event type")
    send_cmd.add_argument("--text", help="WhatsApp and Slack: send a new message with this text, written now (the "
                                         "assistant answers it; each send is a new event)")
    send_cmd.add_argument("--from", dest="sender", metavar="ID",
                          help=f"with --text: who writes it (WhatsApp: a wa_id, default {TEXT_SENDERS['whatsapp']}, "
                               f"whose orders the local ERP knows; Slack: a user id, default {TEXT_SENDERS['slack']})")
    send_cmd.add_argument("--state-dir", type=Path, default=None,
                          help="where `interlock run` keeps secrets.json (default: INTERLOCK_STATE_DIR or "
                               f"{DEFAULT_STATE_DIR})")
    send_cmd.set_defaults(func=send)

    replay_cmd = commands.add_parser(
        "replay", help="start a failed or ignored run's kept event again, as a new run linked to it")
    replay_cmd.add_argument("run_id", metavar="RUN_ID", help="the run to replay (as answered when its event was "
                                                             "accepted)")
    replay_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                          f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    replay_cmd.set_defaults(func=replay)

    upload_cmd = commands.add_parser(
        "upload", help="upload a document too large for an event (PDF or text) and print its reference")
    upload_cmd.add_argument("file", metavar="FILE", help="the document: a PDF or a UTF-8 text file")
    upload_cmd.add_argument("--content-type", choices=["application/pdf", "text/plain"],
                            help="the document's type (default: told from its name or its first bytes)")
    upload_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                          f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    upload_cmd.add_argument("--state-dir", type=Path, default=None,
                            help="where `interlock run` keeps secrets.json, for the form source's secret (default: "
                                 f"INTERLOCK_STATE_DIR or {DEFAULT_STATE_DIR})")
    upload_cmd.set_defaults(func=upload)
    trigger_cmd = commands.add_parser(
        "trigger", help="fire a workflow's schedule now on the running local runtime, and print its run id")
    trigger_cmd.add_argument("schedule", metavar="WORKFLOW.SCHEDULE",
                             help="the schedule, as its workflow declares it (the banner lists them)")
    trigger_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                           f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    trigger_cmd.set_defaults(func=trigger)
    change_cmd = commands.add_parser(
        "change", help="change a record in a workflow table on the running local runtime (a status change), and "
                       "print the run it starts")
    change_cmd.add_argument("table", metavar="TABLE", help="the table, as its workflow declares it (e.g. invoices)")
    change_cmd.add_argument("--key", action="append", required=True, metavar="NAME=VALUE",
                            help="the record's key attribute (repeat for a sort key)")
    change_cmd.add_argument("--set", action="append", required=True, metavar="NAME=VALUE",
                            help="an attribute to set, as a string (repeat for more), e.g. status=approved")
    change_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                          f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    change_cmd.set_defaults(func=change)
    watch_cmd = commands.add_parser(
        "watch", help="follow a run's timeline as it is written, until the run ends (GET /runs/<run_id>/events)")
    watch_cmd.add_argument("run_id", metavar="RUN_ID", help="the run, as its event's acceptance answered it")
    watch_cmd.add_argument("--after", metavar="EVENT_ID", help="start after this entry's event id (default: the first)")
    watch_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                         f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    watch_cmd.set_defaults(func=watch)

    runs_cmd = commands.add_parser("runs", help="list runs, newest first, with filters (GET /runs)")
    runs_cmd.add_argument("--status", help="one or more statuses, comma-separated (failed,escalated)")
    runs_cmd.add_argument("--workflow", help="a workflow's name")
    runs_cmd.add_argument("--source", help="the event's source (form, stripe, schedule, ...)")
    runs_cmd.add_argument("--since", metavar="TIME", help="created at or after: a date (2026-12-01) or an ISO time "
                                                          "with its zone")
    runs_cmd.add_argument("--until", metavar="TIME", help="created before (as --since)")
    runs_cmd.add_argument("--search", metavar="TEXT", help="text in the run's subject or customer")
    runs_cmd.add_argument("--oldest", action="store_true", help="oldest first")
    _list_options(runs_cmd, "runs")
    runs_cmd.set_defaults(func=runs)

    show_cmd = commands.add_parser("show", help="a run's timeline, one line an entry (GET /runs/<run_id>)")
    show_cmd.add_argument("run_id", metavar="RUN_ID", help="the run")
    show_cmd.add_argument("--prompts", action="store_true", help="also what each decision sent its model")
    show_cmd.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
    _url_option(show_cmd)
    show_cmd.set_defaults(func=show)

    approvals_cmd = commands.add_parser("approvals", help="what waits for a person, oldest first (GET /approvals)")
    _list_options(approvals_cmd, "approvals")
    approvals_cmd.set_defaults(func=approvals)

    resend_cmd = commands.add_parser(
        "resend", help="send a run's approval email again, as a new link (the older links stop working)")
    resend_cmd.add_argument("run_id", metavar="RUN_ID", help="the run that waits for an approval")
    resend_cmd.add_argument("--approver", metavar="ADDRESS",
                            help="only to this approver (default: every approver asked who has not decided)")
    resend_cmd.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
    _url_option(resend_cmd)
    resend_cmd.set_defaults(func=resend)

    redrive_cmd = commands.add_parser(
        "redrive", help="move a DLQ's messages back to their queue, each planned first (--dry-run: only the plan)")
    redrive_cmd.add_argument("--dlq", default="ingest", help="which DLQ (default: ingest; GET /dlqs lists them)")
    redrive_cmd.add_argument("--dry-run", action="store_true",
                             help="show, per message, what moving it back would do (its run, the run's status, "
                                  "whether it starts a run or is a duplicate) and move nothing")
    redrive_cmd.add_argument("--limit", type=int, choices=range(1, 101), metavar="N",
                             help="messages a batch (1-100, default 100)")
    redrive_cmd.add_argument("--all", action="store_true", help="batch after batch until nothing more can move")
    redrive_cmd.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
    _url_option(redrive_cmd)
    redrive_cmd.set_defaults(func=redrive)
    return parser


def _url_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                       f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>); API Gateway's URL is "
                                       "called with SigV4 from the shell's AWS credentials")


def _list_options(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--limit", type=int, choices=range(1, 101), metavar="N", help=f"{what} a page (1-100, "
                                                                                       "default 25)")
    command.add_argument("--cursor", help="go on from a page's cursor")
    command.add_argument("--all", action="store_true", help="every page, following the cursors")
    command.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
    _url_option(command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, OperatorError) as exc:
        print(f"interlock: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
