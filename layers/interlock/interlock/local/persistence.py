"""What the embedded local cloud keeps across a restart: ``<state_dir>/state/local-state.json``.

moto holds everything in memory, so without this a restart of ``interlock run`` forgets every run. The
snapshot holds, at one instant:

* every item of the DynamoDB table(s): runs, timelines, dedupe records, approval records (items whose
  TTL has passed are left out when loading: moto never expires them, DynamoDB would have);
* the messages still in each SQS queue and DLQ (an event accepted but not routed yet, a message waiting
  for redelivery, what dead-lettered), re-sent at start;
* each Step Functions execution still running: the state it was in, that state's input, when it entered
  it and, for one waiting for a callback (``.waitForTaskToken``: an approval), its task token and the wait's
  timeout. At start each is resumed in that state with that input, under the same name on the same state
  machine (:mod:`interlock.local.sfn_bridge`); a waiting one waits again with the same token (the approval
  record's token) and only what remained of its timeout, without its Lambda being invoked again (no second
  approval email). One interrupted in the middle of a step runs that step again (at least once, as Lambda
  and Step Functions retries do; the steps are idempotent).

It is written atomically (a temporary file, then a rename) by a background thread at most every
``interval`` seconds after a change (a DynamoDB write, an SQS send or delete, a step's end), and once
more when the runtime stops, after the pollers and the functions have stopped. A crash (``kill -9``) loses
at most the changes of the last interval.

The file is versioned (:data:`VERSION`); one that cannot be read, or was written by another version, stops
the runtime with :class:`StateFileError`, which says how to start clean: nothing is silently discarded.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, PrivateAttr, ValidationError

from interlock.local import dynamodb_lock, get_logger
from interlock.local.functions import ACCOUNT_ID, REGION

log = get_logger(__name__)

STATE_DIR = "state"
STATE_FILE = "local-state.json"
FORMAT: Literal["interlock-local-state"] = "interlock-local-state"
VERSION = 1
FRESH_HINT = "start clean with `interlock run --fresh` (or delete {path})"


class StateFileError(RuntimeError):
    """The saved local state cannot be used; the message says why and how to start clean."""


class QueuedMessage(BaseModel):
    body: str
    attributes: dict[str, Any] = {}  # SQS API message attributes


class InterruptedExecution(BaseModel):
    """A running execution, as much of it as resuming needs."""

    state_machine_arn: str
    execution_arn: str
    name: str
    input: str  # the execution's own input (what DescribeExecution shows)
    start_date: datetime
    state: str | None = None  # the state it was in; None: it had not entered one yet
    state_input: str | None = None
    entered_at: datetime | None = None
    task_token: str | None = None  # set once a callback was requested: it waits for this token
    timeout_seconds: int | None = None  # that wait's timeout, as it was applied


class Snapshot(BaseModel):
    format: Literal["interlock-local-state"] = FORMAT
    version: int = VERSION
    saved_at: datetime
    tables: dict[str, list[dict[str, Any]]] = {}  # physical table name -> items (DynamoDB JSON)
    queues: dict[str, list[QueuedMessage]] = {}  # physical queue name -> its messages
    executions: list[InterruptedExecution] = []
    # The tables' items already as JSON texts (capture_table_texts), written as they are instead of ``tables``:
    # parsing 100,000 items into dicts only to write them out again would cost more than the whole save.
    _table_texts: dict[str, list[str]] | None = PrivateAttr(default=None)

    def with_table_texts(self, texts: dict[str, list[str]]) -> Snapshot:
        self._table_texts = texts
        return self

    def write_json(self, file: BinaryIO) -> None:
        """Write the snapshot's JSON to ``file`` as UTF-8 (the items' texts as they are, one after the other)."""
        if self._table_texts is None:
            file.write(self.model_dump_json().encode())
            return
        file.write((self.model_dump_json(exclude={"tables"})[:-1] + ',"tables":{').encode())
        for number, (name, texts) in enumerate(self._table_texts.items()):
            file.write(f'{"," if number else ""}{json.dumps(name)}:['.encode())
            for start in range(0, len(texts), 1000):
                file.write((("," if start else "") + ",".join(texts[start:start + 1000])).encode())
            file.write(b"]")
        file.write(b"}}")


# -- the file ------------------------------------------------------------------------------------------------


def state_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / STATE_DIR / STATE_FILE


def read(path: Path) -> Snapshot | None:
    """The snapshot at ``path``; None if there is none; :class:`StateFileError` if it cannot be used."""
    hint = FRESH_HINT.format(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(f"cannot read the saved local state {path}: {exc}; {hint}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"the saved local state {path} is not valid JSON ({exc}); {hint}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateFileError(f"{path} is not a saved Interlock local state; {hint}")
    if document.get("version") != VERSION:
        raise StateFileError(f"the saved local state {path} has version {document.get('version')!r}, this "
                             f"Interlock reads version {VERSION}; {hint}")
    try:
        return Snapshot.model_validate(document)
    except ValidationError as exc:
        raise StateFileError(f"the saved local state {path} is malformed ({exc.error_count()} errors, the first: "
                             f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}); {hint}") from exc


def write(path: Path, snapshot: Snapshot) -> None:
    """Write ``snapshot`` atomically: a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as file:
        snapshot.write_json(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


# -- DynamoDB ------------------------------------------------------------------------------------------------


def _dynamodb() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT_ID][REGION]


def capture_tables(names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every item of each table, at one instant (no DynamoDB call runs meanwhile), as DynamoDB JSON."""
    return {name: [json.loads(text) for text in texts] for name, texts in capture_table_texts(names).items()}


# Each item's saved text, made once per version of the item while install_dynamodb_hook is installed: table name ->
# id(item) -> (the item, its text). moto puts a new item object for every PutItem (a transaction's rollback too),
# so an item that is still the object the text was made from is unchanged, unless an UpdateItem changed it in
# place: the hook forgets that item's text. (The entry holds the item, so its id is not reused meanwhile.)
_texts: dict[str, dict[int, tuple[Any, str]]] | None = None


def capture_table_texts(names: list[str]) -> dict[str, list[str]]:
    """Every item of each table, at one instant, each as the JSON text of its DynamoDB JSON.

    Only the items changed since the last capture are turned into text (under the lock, so that no write can
    change one while it is read), so a save costs little more with 10,000 runs stored than with 10: the rest is
    going over the table and writing the file."""
    backend = _dynamodb()
    captured: dict[str, list[str]] = {}
    with dynamodb_lock.lock:
        for name in names:
            known = (_texts or {}).get(name, {})
            kept: dict[int, tuple[Any, str]] = {}
            texts: list[str] = []
            for item in _items_of(backend.get_table(name)):
                hit = known.get(id(item))
                text = hit[1] if hit is not None and hit[0] is item else _item_text(item)
                kept[id(item)] = (item, text)
                texts.append(text)
            if _texts is not None:
                _texts[name] = kept
            captured[name] = texts
    return captured


def _items_of(table: Any) -> list[Any]:
    if table.range_key_attr is None:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


def _item_text(item: Any) -> str:
    from moto.dynamodb.models.dynamo_type import Item

    return json.dumps(_wire(Item.to_json(item)["Attributes"]), separators=(",", ":"))


def install_dynamodb_hook() -> Callable[[], None]:
    """Keep each item's saved text until the item changes (see :func:`capture_table_texts`); returns the undo."""
    global _texts
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        known = (_texts or {}).get(table_name)
        if known:
            table = self.get_table(table_name)
            try:
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                item = table.get_item(hash_key, range_key) if range_key is not None else table.get_item(hash_key)
            except Exception:  # a key moto will refuse: forget them all rather than guess
                known.clear()
            else:
                if item is not None:
                    known.pop(id(item), None)  # forgotten before it changes: a capture cannot come between
        return original(self, table_name, key, *args, **kwargs)

    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    _texts = {}

    def uninstall() -> None:
        global _texts
        DynamoDBBackend.update_item = original  # type: ignore[method-assign]
        _texts = None

    return uninstall


def _wire(value: Any) -> Any:
    """DynamoDB JSON as the wire carries it: a binary value (``B``, ``BS``: a kept envelope) as base64 text, which
    is also how moto holds what it was sent, so an item put back from the file is the item that was saved."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def restore_tables(tables: Mapping[str, list[dict[str, Any]]], ttl_attributes: Mapping[str, str],
                   now: float | None = None) -> int:
    """Put the saved items back, leaving out those whose TTL has passed; the number put back."""
    backend = _dynamodb()
    now = time.time() if now is None else now
    restored = 0
    with dynamodb_lock.lock:
        for name, items in tables.items():
            if name not in backend.tables:
                raise StateFileError(f"the saved local state has items of a table this Interlock does not have "
                                     f"({name}); {FRESH_HINT.format(path='the state directory')}")
            ttl = ttl_attributes.get(name)
            known = _texts.setdefault(name, {}) if _texts is not None else None
            for item in items:
                if ttl and _expired(item.get(ttl), now):
                    continue
                put = backend.put_item(name, item, overwrite=True)
                if known is not None:  # its text is the saved one: the first save need not make it again
                    known[id(put)] = (put, json.dumps(item, separators=(",", ":")))
                restored += 1
    return restored


def _expired(value: Any, now: float) -> bool:
    try:
        return isinstance(value, dict) and "N" in value and float(value["N"]) < now
    except ValueError:
        return False


# -- SQS -----------------------------------------------------------------------------------------------------


def capture_queues(names: list[str]) -> dict[str, list[QueuedMessage]]:
    """The messages in each queue, visible or not (one being handled when the runtime stops is kept)."""
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[ACCOUNT_ID][REGION]
    captured: dict[str, list[QueuedMessage]] = {}
    for name in names:
        queue = backend.queues[name]
        messages = list(queue._messages)  # one C-level copy: a poller may be changing it
        captured[name] = [QueuedMessage(body=m.body, attributes=dict(m.message_attributes)) for m in messages]
    return captured


def restore_queues(sqs: Any, queue_urls: Mapping[str, str], queues: Mapping[str, list[QueuedMessage]]) -> int:
    restored = 0
    for name, messages in queues.items():
        if name not in queue_urls:
            raise StateFileError(f"the saved local state has messages of a queue this Interlock does not have "
                                 f"({name}); {FRESH_HINT.format(path='the state directory')}")
        for message in messages:
            extra = {"MessageAttributes": message.attributes} if message.attributes else {}
            sqs.send_message(QueueUrl=queue_urls[name], MessageBody=message.body, **extra)
            restored += 1
    return restored


# -- Step Functions ------------------------------------------------------------------------------------------


def _stepfunctions() -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[ACCOUNT_ID][REGION]


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_resuming: dict[str, InterruptedExecution] = {}  # execution ARN -> what it was resumed from, until it has moved


def interrupted(execution: Any, state_machine_arn: str) -> InterruptedExecution | None:
    """What resuming ``execution`` (moto's, RUNNING) needs, from its history; None if it cannot be resumed
    (several states open at once: a Parallel or Map state), or need not be (its last state has exited)."""
    base = InterruptedExecution(
        state_machine_arn=state_machine_arn, execution_arn=execution.exec_arn, name=execution.name,
        input=_text(execution.input_data), start_date=_when(execution.start_date))
    if execution.exec_worker is None or execution.exec_worker.env is None:
        return _resuming.get(execution.exec_arn, base)  # created, not started yet
    events = execution.to_history_output()["events"]
    open_states: dict[str, tuple[str, datetime]] = {}
    entered_any = False
    timeout: int | None = None
    submitted = False
    for event in events:
        kind = str(getattr(event["type"], "value", event["type"]))
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            open_states[details["name"]] = (details.get("input", "{}"), _when(event["timestamp"]))
            entered_any = True
            timeout, submitted = None, False
        elif kind.endswith("StateExited"):
            open_states.pop(event["stateExitedEventDetails"]["name"], None)
        elif kind == "TaskScheduled":
            timeout = event["taskScheduledEventDetails"].get("timeoutInSeconds")
            submitted = False
        elif kind == "TaskSubmitted":
            submitted = True
    if not entered_any and execution.exec_arn in _resuming:
        return _resuming[execution.exec_arn]  # resumed a moment ago, not in its state yet: as it was saved
    _resuming.pop(execution.exec_arn, None)
    if not open_states:
        return None if entered_any else base  # finishing, or not started: run it from the start
    if len(open_states) > 1:
        return None
    (state, (state_input, entered_at)), = open_states.items()
    token = None
    if submitted:
        task = execution.exec_worker.env.states.context_object.context_object_data.get("Task") or {}
        token = task.get("Token")
    return base.model_copy(update={
        "state": state, "state_input": state_input, "entered_at": entered_at, "task_token": token,
        "timeout_seconds": int(timeout) if token and timeout is not None else None,
    })


def capture_executions(state_machine_arns: list[str]) -> list[InterruptedExecution]:
    captured: list[InterruptedExecution] = []
    for machine in list(_stepfunctions().state_machines):
        if machine.arn not in state_machine_arns:
            continue
        for execution in list(machine.executions):
            if execution.status != "RUNNING":
                continue
            found = interrupted(execution, machine.arn)
            if found is None:
                log.warning("execution %s cannot be resumed after a restart (it is in several states at once, "
                            "or finishing); it is left out of the saved state", execution.name)
                continue
            captured.append(found)
    return captured


def resume_executions(sfn: Any, executions: list[InterruptedExecution], now: datetime | None = None) -> int:
    """Start each execution again where it was (see the module's docstring); the number resumed."""
    from interlock.local.sfn_bridge import ResumePlan, resume, resume_definition, wait_until_waiting

    now = now or datetime.now(UTC)
    resumed = 0
    for saved in executions:
        start_input = saved.input
        if saved.state is not None:
            remaining: int | None = None
            if saved.timeout_seconds is not None and saved.entered_at is not None:
                waited = (now - saved.entered_at).total_seconds()
                remaining = max(1, math.ceil(saved.timeout_seconds - waited))
            definition = sfn.describe_state_machine(stateMachineArn=saved.state_machine_arn)["definition"]
            try:
                plan_definition = resume_definition(definition, saved.state, remaining)
            except KeyError:
                log.warning("run %s was in state %s, which its state machine no longer has; it is not resumed",
                            saved.name, saved.state)
                continue
            resume(ResumePlan(saved.execution_arn, plan_definition, saved.state, saved.task_token))
            _resuming[saved.execution_arn] = saved
            start_input = saved.state_input or "{}"
        sfn.start_execution(stateMachineArn=saved.state_machine_arn, name=saved.name, input=start_input)
        _keep_identity(saved)
        resumed += 1
    if not wait_until_waiting():
        log.warning("some resumed executions are not waiting for their callback yet")
    return resumed


def _keep_identity(saved: InterruptedExecution) -> None:
    """DescribeExecution of a resumed execution shows its original input and start date."""
    for machine in _stepfunctions().state_machines:
        if machine.arn != saved.state_machine_arn:
            continue
        for execution in machine.executions:
            if execution.exec_arn == saved.execution_arn:
                for attribute in ("input_data", "execution_input"):  # moto's two views of it
                    current = getattr(execution, attribute, None)
                    setattr(execution, attribute, saved.input if isinstance(current, str) else json.loads(saved.input))
                execution.start_date = saved.start_date


# -- the runtime's side ----------------------------------------------------------------------------------------


class LocalState:
    """Loads the saved state into a started :class:`~interlock.local.cloud.LocalCloud` and keeps it saved.

    ``capture`` is what the flusher writes: set with :meth:`attach` once the resources exist.
    """

    def __init__(self, state_dir: Path | str, interval: float = 0.5) -> None:
        self.path = state_path(state_dir)
        self.interval = interval
        self._capture: Callable[[], Snapshot] | None = None
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.saved: Snapshot | None = None

    def load(self) -> Snapshot | None:
        """Read the saved state (before anything starts, so an unusable file stops the runtime early)."""
        self.saved = read(self.path)
        return self.saved

    def mark_dirty(self) -> None:
        self._dirty.set()

    def attach(self, capture: Callable[[], Snapshot]) -> None:
        self._capture = capture

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="local-state", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        if self._capture is None:
            return
        with self._write_lock:
            self._dirty.clear()
            write(self.path, self._capture())

    def stop(self, final: bool = True) -> None:
        """Stop the flusher; with ``final``, save once more (the caller has stopped everything that changes it)."""
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if final:
            self.flush()

    def _loop(self) -> None:
        pause = self.interval
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.wait(pause) or self._stop.is_set():
                return
            started = time.thread_time()
            try:
                self.flush()
            except Exception:
                log.exception("could not save the local state to %s; trying again", self.path)
                self._dirty.set()
            # Saving costs about as much as the state is large: never spend more than a tenth of the CPU on it (its
            # own CPU time: waiting for the disk to take the file costs the runs nothing). With 10,000 runs stored a
            # save takes about a second of CPU, so it is then written about every ten seconds.
            pause = max(self.interval, 19 * (time.thread_time() - started))


# -- knowing when SQS changed --------------------------------------------------------------------------------

SQS_READS = frozenset({"ReceiveMessage", "GetQueueAttributes", "GetQueueUrl", "ListQueues",
                       "ListDeadLetterSourceQueues", "ListQueueTags", "ChangeMessageVisibility",
                       "ChangeMessageVisibilityBatch"})


def install_sqs_hook(on_change: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_change`` after each SQS call that may change what the queues hold; returns the undo."""
    from moto.sqs.responses import SQSResponse

    original = SQSResponse.call_action

    def call_action(self: Any) -> Any:
        try:
            return original(self)
        finally:
            try:
                action = self._get_action()
            except Exception:  # an unparsable request changed nothing
                action = "ReceiveMessage"
            if action not in SQS_READS:
                on_change()

    SQSResponse.call_action = call_action  # type: ignore[method-assign]

    def uninstall() -> None:
        SQSResponse.call_action = original  # type: ignore[method-assign]

    return uninstall
