"""A local Lambda runtime: the topology's handlers, invoked in-process the way Lambda invokes them.

What is emulated, because handlers and their callers depend on it:

* the event crosses a JSON boundary both ways (the handler gets a fresh copy; a result that is not
  JSON-serialisable is a ``Runtime.MarshalError``, as in Lambda);
* a context object with the attributes of the Python runtime's ``LambdaContext``, whose
  ``get_remaining_time_in_millis`` counts down from the function's configured timeout;
* the function timeout: an invocation that overruns it answers ``Sandbox.Timedout`` (the thread cannot
  be killed, so it is left to finish in the background and its result is discarded);
* errors come back in the runtime's error shape ``{errorMessage, errorType, requestId, stackTrace}``,
  with ``errorType`` the exception class name, which is what Step Functions Retry/Catch match on;
* modules are imported on first invoke (a cold start), so a handler that does not exist yet, or fails
  at import, fails its own invocations (``Runtime.ImportModuleError``) and nothing else.

What is not: process isolation. Every function shares one interpreter, so the libraries' module-level state and
``os.environ`` are shared (the cloud checks that no two functions want different environment values). A handler's
own module is each execution environment's: a concurrent invocation runs in a copy of it, as Lambda would run it
in another environment, so a request never reads another's from a module-level global (a Powertools resolver's).
Log lines still name the function that wrote them: each invocation runs in a thread of its own, the
Powertools keys an invocation appends are that thread's (:mod:`interlock.observability`), and its
``cold_start`` is told as Lambda tells it (a new execution environment per concurrent invocation, kept
warm after) rather than once per process.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from interlock.local import get_logger
from interlock.topology import APP_NAME, FUNCTIONS_DIR, Function, Topology

log = get_logger(__name__)

ACCOUNT_ID = "123456789012"  # moto's default account: ARNs built here match the ones moto builds
REGION = "us-east-1"

Handler = Callable[[Any, Any], Any]

# Whether the invocation the current thread serves started a new execution environment (None: no invocation).
_cold_start: ContextVar[bool | None] = ContextVar("local_lambda_cold_start", default=None)


class _ColdStartFilter(logging.Filter):
    """Stamps the Powertools logger's records with the current invocation's own ``cold_start`` (a record's
    extra attributes override the formatter's keys): Powertools keeps one cold-start flag per process."""

    def filter(self, record: logging.LogRecord) -> bool:
        cold = _cold_start.get()
        if cold is not None:
            record.cold_start = cold
        return True


_COLD_START_FILTER = _ColdStartFilter()


def _stamp_cold_starts() -> None:
    service = logging.getLogger(APP_NAME)  # the Powertools logger: POWERTOOLS_SERVICE_NAME (env.py)
    if _COLD_START_FILTER not in service.filters:
        service.addFilter(_COLD_START_FILTER)


def physical_name(function: str) -> str:
    """The deployed function name, ``interlock-<name>``."""
    return f"{APP_NAME}-{function}"


def function_arn(function: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{physical_name(function)}"


@dataclass(frozen=True)
class LambdaError:
    """An unhandled error as the Lambda Python runtime reports it."""

    error_type: str
    error_message: str
    request_id: str
    stack_trace: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "errorMessage": self.error_message,
            "errorType": self.error_type,
            "requestId": self.request_id,
            "stackTrace": self.stack_trace,
        }

    @classmethod
    def from_exception(cls, exc: BaseException, request_id: str, error_type: str | None = None) -> LambdaError:
        frames = traceback.extract_tb(exc.__traceback__)
        return cls(
            error_type=error_type or type(exc).__name__,
            error_message=str(exc),
            request_id=request_id,
            stack_trace=traceback.format_list(frames),
        )


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invoke: a JSON-compatible ``payload``, or an ``error``."""

    function: str
    request_id: str
    payload: Any = None
    error: LambdaError | None = None
    duration_ms: float = 0.0
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def response_payload(self) -> bytes:
        """The bytes Lambda's Invoke API returns as ``Payload``."""
        body = self.error.payload() if self.error else self.payload
        return json.dumps(body).encode()


class LambdaContext:
    """The attributes of the Python runtime's context object (``awslambdaric``'s ``LambdaContext``)."""

    def __init__(self, function: Function, request_id: str, region: str, account: str) -> None:
        name = physical_name(function.name)
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(function.name, region, account)
        # The real runtime reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so it is a string there too.
        self.memory_limit_in_mb = str(function.memory_mb)
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalLambda:
    """Invokes the topology's functions by name, physical name or ARN."""

    def __init__(
        self,
        topology: Topology,
        functions_dir: Path = FUNCTIONS_DIR,
        region: str = REGION,
        account: str = ACCOUNT_ID,
    ) -> None:
        self.topology = topology
        self.functions_dir = functions_dir
        self.region = region
        self.account = account
        self._handlers: dict[str, Handler] = {}
        self._import_lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition()
        self._closed = False
        self._warm: dict[str, list[Handler]] = {}  # function -> its warm, free execution environments' handlers
        self._environments: dict[str, int] = {}  # function -> execution environments made
        self._copies: list[str] = []  # the modules of the environments after the first (in sys.modules)
        self._warm_lock = threading.Lock()
        _stamp_cold_starts()

    # -- naming ---------------------------------------------------------------------------------------------

    def arn(self, function: str) -> str:
        return function_arn(self.topology.function(function).name, self.region, self.account)

    def resolve(self, identifier: str) -> Function:
        """The function behind a name, ``interlock-<name>``, or a (possibly qualified) function ARN."""
        name = identifier
        if identifier.startswith("arn:"):
            parts = identifier.split(":")
            if len(parts) < 7 or parts[5] != "function":
                raise KeyError(f"not a Lambda function ARN: {identifier!r}")
            name = parts[6]
        prefix = f"{APP_NAME}-"
        if name.startswith(prefix):
            name = name[len(prefix):]
        return self.topology.function(name)

    # -- invoking -------------------------------------------------------------------------------------------

    def invoke(self, function: str, event: Any) -> Invocation:
        """Invoke synchronously (``RequestResponse``), honouring the function's timeout."""
        fn = self.resolve(function)
        request_id = str(uuid.uuid4())
        if self._closed:
            error = LambdaError("Lambda.ServiceException", "the local runtime is shutting down", request_id)
            return Invocation(fn.name, request_id, error=error)
        try:
            event_copy = json.loads(json.dumps(event))
        except (TypeError, ValueError) as exc:
            error = LambdaError("InvalidRequestContentException", f"could not serialise the event: {exc}",
                                request_id)
            return Invocation(fn.name, request_id, error=error)
        with self._tracking():
            return self._run_with_timeout(fn, event_copy, request_id)

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse new invocations and wait for the running ones; False if some are still running."""
        self._closed = True
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        for name in self._copies:
            sys.modules.pop(name, None)
        return True

    @contextmanager
    def _tracking(self) -> Iterator[None]:
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _run_with_timeout(self, fn: Function, event: Any, request_id: str) -> Invocation:
        # Initialisation (the module import) is not part of the function's timeout, as in Lambda.
        try:
            handler = self._handler(fn)
        except _InitError as exc:
            log.warning("%s failed to initialise: %s: %s", physical_name(fn.name), exc.error_type, exc)
            return Invocation(fn.name, request_id, error=LambdaError(exc.error_type, str(exc), request_id,
                                                                     exc.stack_trace))
        outcome: list[Invocation] = []
        worker = threading.Thread(
            target=lambda: outcome.append(self._call(fn, handler, event, request_id)),
            name=f"lambda-{fn.name}-{request_id[:8]}",
            daemon=True,
        )
        started = time.monotonic()
        worker.start()
        worker.join(fn.timeout_seconds)
        if outcome:
            return outcome[0]
        elapsed = time.monotonic() - started
        log.warning("%s timed out after %.2f seconds (request %s)", physical_name(fn.name), elapsed, request_id)
        error = LambdaError(
            "Sandbox.Timedout",
            f"RequestId: {request_id} Error: Task timed out after {fn.timeout_seconds:.2f} seconds",
            request_id,
        )
        return Invocation(fn.name, request_id, error=error, duration_ms=elapsed * 1000)

    def _call(self, fn: Function, handler: Handler, event: Any, request_id: str) -> Invocation:
        started = time.monotonic()

        def done(payload: Any = None, error: LambdaError | None = None,
                 exception: BaseException | None = None) -> Invocation:
            return Invocation(fn.name, request_id, payload, error, (time.monotonic() - started) * 1000, exception)

        context = LambdaContext(fn, request_id, self.region, self.account)
        try:
            environment, cold = self._take_environment(fn, handler)
        except _InitError as exc:
            return done(error=LambdaError(exc.error_type, str(exc), request_id, exc.stack_trace))
        _cold_start.set(cold)
        try:
            result = environment(event, context)
        except BaseException as exc:  # even SystemExit: in Lambda it ends the invocation, not the runtime
            log.warning("%s raised %s: %s", physical_name(fn.name), type(exc).__name__, exc)
            log.debug("traceback of %s", request_id, exc_info=exc)
            return done(error=LambdaError.from_exception(exc, request_id), exception=exc)
        finally:
            self._release_environment(fn.name, environment)
        try:
            payload = json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            return done(error=LambdaError("Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id))
        return done(payload)

    # -- cold start -----------------------------------------------------------------------------------------

    def _take_environment(self, fn: Function, first: Handler) -> tuple[Handler, bool]:
        """A warm, free execution environment of ``fn`` (its handler), and whether it is new (a cold start).

        As in Lambda, an environment serves one invocation at a time, and a concurrent invocation gets a new one:
        here a copy of the handler's module of its own (the first environment is the module imported as such).
        Module-level state, such as the Powertools resolver that holds the request being resolved, is then each
        environment's, and two concurrent requests cannot read each other's event."""
        with self._warm_lock:
            free = self._warm.setdefault(fn.name, [])
            if free:
                return free.pop(), False
            number = self._environments.get(fn.name, 0)
            self._environments[fn.name] = number + 1
        if number == 0:
            return first, True
        return self._load_copy(fn, number), True

    def _release_environment(self, function: str, handler: Handler) -> None:
        with self._warm_lock:
            self._warm.setdefault(function, []).append(handler)

    def _load_copy(self, fn: Function, number: int) -> Handler:
        """A copy of ``fn``'s module, for its ``number``-th execution environment; its handler."""
        import importlib.util

        spec = importlib.util.find_spec(fn.module)
        name = f"_interlock_environment_{number}_{fn.module}"
        if spec is None or spec.origin is None:
            raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{fn.module}'")
        copy = importlib.util.spec_from_file_location(name, spec.origin)
        if copy is None or copy.loader is None:
            raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{fn.module}'")
        module = importlib.util.module_from_spec(copy)
        sys.modules[name] = module  # while it runs: what it defines is looked up by its module's name
        self._copies.append(name)
        try:
            copy.loader.exec_module(module)
        except Exception as exc:
            raise _InitError(type(exc).__name__, str(exc), exc) from exc
        handler = getattr(module, "handler", None)
        if not callable(handler):
            raise _InitError("Runtime.HandlerNotFound", f"Handler 'handler' missing on module '{fn.module}'")
        return handler

    def _handler(self, fn: Function) -> Handler:
        handler = self._handlers.get(fn.name)
        if handler is not None:
            return handler
        with self._import_lock:
            if fn.name not in self._handlers:
                self._handlers[fn.name] = self._load(fn)
            return self._handlers[fn.name]

    def _load(self, fn: Function) -> Handler:
        """Import ``fn.module`` afresh (a new runtime is a new deployment, so module state starts cold)."""
        path = str(self.functions_dir)
        if path not in sys.path:
            sys.path.insert(0, path)
        try:
            module = _fresh_import(fn.module)
        except ImportError as exc:
            raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{fn.module}': {exc}",
                             exc) from exc
        except SyntaxError as exc:
            raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{fn.module}': {exc}",
                             exc) from exc
        except Exception as exc:
            raise _InitError(type(exc).__name__, str(exc), exc) from exc
        handler = getattr(module, "handler", None)
        if not callable(handler):
            raise _InitError("Runtime.HandlerNotFound", f"Handler 'handler' missing on module '{fn.module}'")
        return handler


class _InitError(Exception):
    """The module could not be imported or has no handler: every invoke fails until it can."""

    def __init__(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        frames = traceback.extract_tb(cause.__traceback__) if cause else []
        self.stack_trace = traceback.format_list(frames)


def _fresh_import(module_name: str) -> ModuleType:
    existing = sys.modules.get(module_name)
    if existing is not None:
        return importlib.reload(existing)
    return importlib.import_module(module_name)


def cold_start_reset() -> None:
    """Forget every process-wide cache the handlers' shared code keeps, as a fresh deployment would.

    In Lambda each deployment starts new processes; here a second runtime in the same process (tests,
    a restart) would otherwise reuse clients, settings and adapters built for the previous one.
    Only modules already imported are touched, so this never imports anything.
    """
    for name, module in list(sys.modules.items()):
        if not name.startswith("interlock.") or name.startswith("interlock.local"):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()
        base = sys.modules.get("aws_lambda_powertools.utilities.parameters.base")
        if base is not None:
            base.DEFAULT_PROVIDERS.clear()
