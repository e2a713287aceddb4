"""API Gateway (REST API, Lambda proxy integration) as a real local HTTP server.

Requests are matched against the topology's routes and turned into the proxy event API Gateway sends
(``resource``, ``headers`` + ``multiValueHeaders`` as sent, query strings as ``None`` when absent,
``pathParameters``, ``requestContext``, a text body or base64 with ``isBase64Encoded``). The function's
answer is written back the way API Gateway does: ``headers`` and ``multiValueHeaders`` merged, a base64
body decoded, and ``502 {"message": "Internal server error"}`` when the function fails or answers
something that is not a proxy response. The local fakes are mounted under ``/_local/``.

What the server itself refuses, before any function (docs/input-limits.md): a request line it cannot read,
HTTP/0.9 (no headers, so no status line could follow: answered with an HTTP/1.0 400 at once and closed), an
HTTP version past 1.x, a ``Content-Length`` that is not one decimal number or is shorter than the body sent,
both ``Content-Length`` and ``Transfer-Encoding``, a transfer coding other than ``chunked``, a malformed chunk:
each a 400 (JSON, as API Gateway answers), and the connection closed, since what follows on it cannot be
trusted to be a request. A body over 10 MiB is a 413. A method the topology has no route for on a known
resource is a 405 with ``Allow``, whatever the method (never the standard library's 501).

An event stream (a ``GET`` answered ``200 text/event-stream``, as ``/runs/{run_id}/events`` is) is kept open: on
AWS the route answers a series of short responses that ``EventSource`` reconnects to; here the gateway chains them
into one live, chunked response (``X-Interlock-Stream: live``), asking the same function again after the last event
id it sent, until a response ends the stream (its ``X-Interlock-Stream: end``), the function answers anything but
200, or the client goes away. The client then reconnects with ``Last-Event-ID`` as it would on AWS.

The console line for each request never shows a credential: under a path prefix that routes to a credential
parameter (``/approvals/``), everything after the prefix is hidden, whichever method and whether or not a
route matched; every query value is hidden; and the method, path and query names are escaped
(:func:`interlock.safe_log.printable`), so no terminal escape an outsider sends reaches the console raw.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from interlock.local import get_logger
from interlock.local.fakes import LocalFakes
from interlock.local.functions import ACCOUNT_ID, Invocation
from interlock.local.http_types import Request, Response, json_response
from interlock.local.uploads import LocalUploads
from interlock.run_events import END_HEADER as STREAM_HEADER
from interlock.run_events import EVENT_STREAM
from interlock.safe_log import printable
from interlock.topology import Route, Topology

log = get_logger(__name__)

STAGE = "local"
API_ID = "interlocal"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
READ_TIMEOUT_SECONDS = 30  # a client that stops sending mid-request holds a thread this long, no more
BACKLOG = 128  # connections waiting while the runtime boots (the standard library's 5 drops a burst)
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")
MAX_TRAILER_LINES = 100

Invoke = Callable[[str, Any], Invocation]


# -- routing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


class MethodNotAllowed(Exception):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


# Path parameters whose values are credentials, and never logged (the approval link's token).
CREDENTIAL_PARAMETERS = frozenset({"token"})
HIDDEN = "…"

_PARAM = re.compile(r"^\{([A-Za-z0-9_.-]+)(\+?)\}$")


def _match_template(template: str, raw_path: str) -> dict[str, str] | None:
    """Path parameters if ``raw_path`` (still percent-encoded) fits ``template``, else None."""
    want = template.strip("/").split("/") if template.strip("/") else []
    have = raw_path.strip("/").split("/") if raw_path.strip("/") else []
    params: dict[str, str] = {}
    for index, segment in enumerate(want):
        param = _PARAM.match(segment)
        if param and param.group(2):  # {proxy+}: the rest of the path, at least one segment
            if index >= len(have):
                return None
            params[param.group(1)] = unquote("/".join(have[index:]))
            return params
        if index >= len(have):
            return None
        if param:
            if not have[index]:
                return None
            params[param.group(1)] = unquote(have[index])
        elif segment != have[index]:
            return None
    return params if len(want) == len(have) else None


def _specificity(template: str) -> tuple[int, int]:
    segments = template.strip("/").split("/")
    literal = sum(1 for s in segments if not _PARAM.match(s))
    greedy = sum(1 for s in segments if s.endswith("+}"))
    return literal, -greedy


class RouteTable:
    """The topology's routes; the most specific resource wins, as in API Gateway."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = sorted(routes, key=lambda r: _specificity(r.path), reverse=True)

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        """The route for a request; None when no resource matches; MethodNotAllowed when only the method is wrong."""
        resource: str | None = None
        allowed: list[str] = []
        for route in self.routes:
            params = _match_template(route.path, raw_path)
            if params is None or (resource is not None and route.path != resource):
                continue
            resource = route.path
            if route.method in (method, "ANY"):
                return RouteMatch(route, params)
            allowed.append(route.method)
        if resource is None:
            return None
        raise MethodNotAllowed(sorted(set(allowed)))


# -- the proxy event -----------------------------------------------------------------------------------------


def _headers(pairs: list[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def _query(query: dict[str, list[str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not query:
        return None, None
    return {k: v[-1] for k, v in query.items()}, {k: list(v) for k, v in query.items()}


def _body(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def build_event(match: RouteMatch, request: Request, source_ip: str, request_id: str | None = None,
                now: float | None = None) -> dict[str, Any]:
    """The REST API proxy event for ``request`` (API Gateway's shape, field for field)."""
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    headers, multi_headers = _headers(request.headers)
    query, multi_query = _query(request.query)
    body, is_base64 = _body(request.body)
    host = request.header("Host") or "127.0.0.1"
    user_agent = request.header("User-Agent")
    return {
        "resource": match.route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, match.route.path).hex[:6],
            "resourcePath": match.route.path,
            "httpMethod": request.method,
            "extendedRequestId": secrets.token_urlsafe(12),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{STAGE}{request.path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": host,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


# -- the function's answer -------------------------------------------------------------------------------------


class MalformedProxyResponse(ValueError):
    """What API Gateway logs as "Malformed Lambda proxy response" before answering 502."""


def proxy_response(payload: Any) -> Response:
    """Turn a Lambda proxy response into HTTP, merging ``headers`` into ``multiValueHeaders``."""
    if not isinstance(payload, dict):
        raise MalformedProxyResponse(f"the response is a {type(payload).__name__}, not an object")
    status = payload.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedProxyResponse(f"statusCode {status!r} is not an HTTP status")
    headers = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise MalformedProxyResponse("headers and multiValueHeaders must be objects")
    merged: list[tuple[str, str]] = []
    for key, values in multi.items():
        if not isinstance(values, list):
            raise MalformedProxyResponse(f"multiValueHeaders[{key!r}] is not a list")
        merged.extend((str(key), _header_value(v)) for v in values)
    multi_keys = {str(k).lower() for k in multi}
    merged.extend((str(k), _header_value(v)) for k, v in headers.items() if str(k).lower() not in multi_keys)
    return Response(status, merged, _response_body(payload.get("body"), bool(payload.get("isBase64Encoded"))))


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _response_body(body: Any, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedProxyResponse(f"body is a {type(body).__name__}, not a string")
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedProxyResponse("isBase64Encoded is true but the body is not base64") from exc


# -- the server ----------------------------------------------------------------------------------------------


class Gateway:
    """Binds at construction (so the port, even port 0, is known before the cloud is configured)."""

    def __init__(self, topology: Topology, host: str = "127.0.0.1", port: int = 8000,
                 fakes: LocalFakes | None = None) -> None:
        self.routes = RouteTable(topology.routes)
        self._credential_prefixes = _credential_prefixes(topology.routes)
        self.fakes = fakes or LocalFakes()
        # S3's presigned PUT for the topology's buckets (interlock.local.uploads), in moto's bucket of that name.
        from interlock.local.cloud import resource_name

        self.uploads = LocalUploads(topology.buckets, resource_name)
        self._invoke: Invoke | None = None
        self._server = _Server((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="interlock-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    # -- request handling -----------------------------------------------------------------------------------

    def loggable(self, method: str, raw_path: str, query: str) -> str:
        """The request for the console: its method and path with what may be a credential hidden, escaped.

        Hidden: everything after a prefix that leads to a credential parameter (``/approvals/`` + anything,
        matched by the path's shape, decoded and case-insensitively, before and whatever route matching
        says), the value of a credential parameter of a matched route, and every query value (WhatsApp's
        ``hub.verify_token``). The query's names stay, so the console still says what was asked."""
        hidden_below = self._credential_prefix(raw_path)
        if hidden_below is not None:  # the query too: nothing after the prefix is shown
            return f"{printable(method, 20)} {hidden_below}{HIDDEN}{'?' + HIDDEN if query else ''}"
        shown = raw_path
        try:
            match = self.routes.match(method, raw_path)
        except MethodNotAllowed:
            match = None
        if match is not None:
            params = match.path_parameters
            shown = re.sub(r"\{([A-Za-z0-9_.-]+)\+?\}",
                           lambda m: HIDDEN if m[1] in CREDENTIAL_PARAMETERS else params.get(m[1], ""),
                           match.route.path)
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
        shown += "?" + "&".join(f"{name}={HIDDEN}" for name in names) if names else ""
        return f"{printable(method, 20)} {printable(shown, 300)}"

    def _credential_prefix(self, raw_path: str) -> str | None:
        """``/approvals/`` when the path lies under a prefix whose next segment is a credential parameter."""
        segments = [s for s in unquote(raw_path).split("/") if s]
        for prefix in self._credential_prefixes:
            head = [s.casefold() for s in segments[:len(prefix)]]
            if len(head) == len(prefix) and all(have.startswith(want) for have, want in zip(head, prefix, strict=True)):
                return "/" + "".join(f"{part}/" for part in prefix)
        return None

    def body_limit(self, raw_path: str) -> int:
        """The largest body the gateway reads for ``raw_path``: API Gateway's 10 MiB, or, for an upload's PUT to the
        local S3 endpoint, the uploads' own cap (S3 takes up to 5 GB in one PUT)."""
        if self.uploads.handles(unquote(raw_path)):
            return max(MAX_BODY_BYTES, self.uploads.body_limit())
        return MAX_BODY_BYTES

    def live_stream(self, request: Request, raw_path: str, source_ip: str, first: Response) -> Iterator[bytes]:
        """The bodies of an event stream's short responses, ``first`` then each next one asked for after the last
        event id sent, until one ends the stream or is not a 200."""
        response, cursor = first, None
        while True:
            yield response.body if response is first else _RETRY_LINE.sub(b"", response.body, count=1)
            if _header(response, STREAM_HEADER) == "end":
                return
            ids = _EVENT_ID_LINE.findall(response.body)
            cursor = ids[-1].decode() if ids else cursor
            headers = [(k, v) for k, v in request.headers if k.lower() != "last-event-id"]
            response = self.respond(replace(request, headers=headers + ([("Last-Event-ID", cursor)] if cursor else [])),
                                    raw_path, source_ip)
            if response.status != 200:
                return

    def respond(self, request: Request, raw_path: str, source_ip: str) -> Response:
        """The gateway's answer to one request (kept free of sockets so it is testable directly)."""
        if self.uploads.handles(request.path):
            return self.uploads.handle(request)
        if self.fakes.handles(request.path):
            return self.fakes.handle(request)
        try:
            match = self.routes.match(request.method, raw_path)
        except MethodNotAllowed as exc:
            return json_response(405, {"message": "Method Not Allowed"}, {"Allow": ", ".join(exc.allowed)})
        if match is None:
            return json_response(404, {"message": "Not Found"})
        return self._integrate(match, request, source_ip)

    def _integrate(self, match: RouteMatch, request: Request, source_ip: str) -> Response:
        if self._invoke is None:
            return json_response(503, {"message": "Service Unavailable"})
        request_id = str(uuid.uuid4())
        event = build_event(match, request, source_ip, request_id)
        invocation = self._invoke(match.route.function, event)
        amzn = [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", secrets.token_urlsafe(12)[:16])]
        method = printable(request.method, 20)
        if not invocation.ok:
            assert invocation.error is not None
            # An exception's message and traceback may quote what the request held: escaped, line by line.
            log.error("%s %s: function %s failed: %s: %s%s", method, match.route.path, match.route.function,
                      printable(invocation.error.error_type, 100), printable(invocation.error.error_message, 500),
                      _traceback(invocation.exception))
            return _internal_error(amzn)
        try:
            response = proxy_response(invocation.payload)
        except MalformedProxyResponse as exc:
            log.error("%s %s: malformed Lambda proxy response from %s: %s", method, match.route.path,
                      match.route.function, printable(exc, 500))
            return _internal_error(amzn)
        headers = response.headers
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers = [*headers, ("Content-Type", "application/json")]
        return Response(response.status, [*headers, *amzn], response.body)


def _credential_prefixes(routes: tuple[Route, ...]) -> tuple[tuple[str, ...], ...]:
    """The literal path segments before each credential parameter of a route (``("approvals",)``)."""
    prefixes: set[tuple[str, ...]] = set()
    for route in routes:
        segments = [s for s in route.path.split("/") if s]
        for index, segment in enumerate(segments):
            param = _PARAM.match(segment)
            if param and param.group(1) in CREDENTIAL_PARAMETERS:
                prefixes.add(tuple(s.casefold() for s in segments[:index]))
                break
    return tuple(sorted(prefixes))


def _traceback(exception: BaseException | None) -> str:
    if exception is None:
        return ""
    import traceback

    lines = traceback.format_exception(type(exception), exception, exception.__traceback__)
    return "\n" + "\n".join(printable(line, 2000) for chunk in lines for line in chunk.rstrip("\n").split("\n"))


def _split_target(target: str) -> tuple[str, str]:
    """The request target's raw path and query string. An absolute-form target (``http://host/p``) is split
    as a URL; any other is not parsed as one, so ``//approvals/x`` stays a path (urlsplit would take
    ``approvals`` for a host)."""
    if "://" in target.split("?", 1)[0]:
        split = urlsplit(target)
        return split.path or "/", split.query
    path, _, query = target.partition("?")
    return path.partition("#")[0] or "/", query.partition("#")[0]


def _internal_error(extra: list[tuple[str, str]]) -> Response:
    answer = json_response(502, {"message": "Internal server error"})
    return Response(answer.status, [*answer.headers, *extra], answer.body)


class _PayloadTooLarge(Exception):
    pass


class _BadRequest(Exception):
    """A request whose framing cannot be read: answered 400, and its connection closed."""


class _Server(ThreadingHTTPServer):
    request_queue_size = BACKLOG


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "interlock-local"
        # Connections are kept open between requests (as API Gateway keeps them): a client sending many requests
        # does not pay a connection, and the runtime a thread, for each. An idle connection is closed after
        # READ_TIMEOUT_SECONDS; an HTTP/1.0 client's, after its answer.
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_SECONDS

        def version_string(self) -> str:
            return self.server_version

        def handle(self) -> None:
            # A client that drops a kept-alive connection while it waits for the next request (a reset, a pipe
            # closed) is a connection ending, not an error to print a traceback for.
            try:
                super().handle()
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                log.debug("a client closed its connection")

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the gateway (a 405 with Allow on a known resource, as API Gateway answers),
            # not the standard library's 501 for a method without a do_<METHOD>.
            if name.startswith("do_"):
                return self._dispatch
            raise AttributeError(name)

        def parse_request(self) -> bool:
            words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
            if len(words) == 2:
                # HTTP/0.9: the standard library would wait for headers that never come, then answer with no
                # status line. Refused at once, with one.
                self.command, self.request_version, self.close_connection = "", "HTTP/1.0", True
                self.protocol_version = "HTTP/1.0"  # the answer's status line, for a client older than 1.1
                self.send_error(400, "HTTP/0.9 is not supported")
                return False
            return bool(super().parse_request())

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # What the standard library refuses itself (an unreadable request line or version, headers too
            # long): JSON like every other answer, never a 5xx (505 for HTTP/2.0 on an HTTP/1.1 port is a 400).
            status = 400 if code >= 500 else code
            self.close_connection = True
            if not getattr(self, "request_version", None) or self.request_version == "HTTP/0.9":
                self.request_version = "HTTP/1.0"
            # Not the standard library's message: it quotes the request line, which may hold a token.
            log.info("a malformed request -> %d (%s)", status, HTTPStatus(code).phrase)
            self._write(json_response(status, {"message": HTTPStatus(status).phrase}))

        def _dispatch(self) -> None:
            started = time.monotonic()
            raw_path, raw_query = _split_target(self.path)
            shown = gateway.loggable(self.command, raw_path, raw_query)
            try:
                body = self._read_body(gateway.body_limit(raw_path))
            # Each console line is written before its answer, so that whoever has the answer can find its line.
            except _PayloadTooLarge:
                self.close_connection = True
                log.info("%s -> 413 (the body is over %d bytes)", shown, gateway.body_limit(raw_path))
                self._write(json_response(413, {"message": "Request Too Long"}))
                return
            except _BadRequest as exc:
                self.close_connection = True
                log.info("%s -> 400 (%s)", shown, exc)
                self._write(json_response(400, {"message": "Bad Request"}))
                return
            except TimeoutError:
                self.close_connection = True
                log.info("%s -> 408 (the body did not arrive within %d s)", shown, READ_TIMEOUT_SECONDS)
                self._write(json_response(408, {"message": "Request Timeout"}))
                return
            request = Request(
                method=self.command,
                path=unquote(raw_path) or "/",
                query=_parse_query(raw_query),
                headers=list(self.headers.items()),
                body=body,
            )
            try:
                response = gateway.respond(request, raw_path, self.client_address[0])
            except Exception:
                log.exception("%s: the local gateway failed", shown)
                response = json_response(500, {"message": "Internal server error"})
            log.info("%s -> %d (%.0f ms)", shown, response.status, (time.monotonic() - started) * 1000)
            if self._is_event_stream(response):
                self._write_live(request, raw_path, response)
                return
            self._write(response)

        def _is_event_stream(self, response: Response) -> bool:
            return (self.command == "GET" and self.request_version == "HTTP/1.1" and response.status == 200
                    and (_header(response, "Content-Type") or "").startswith(EVENT_STREAM)
                    and _header(response, STREAM_HEADER) != "end")

        def _write_live(self, request: Request, raw_path: str, first: Response) -> None:
            try:
                self.send_response(200)
                for key, value in first.headers:
                    if key.lower() not in ("content-length", "connection", "date", "server", STREAM_HEADER.lower()):
                        self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header(STREAM_HEADER, "live")
                self.end_headers()
                for body in gateway.live_stream(request, raw_path, self.client_address[0], first):
                    if body:
                        self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True
                log.debug("the client of an event stream went away")

        def _read_body(self, limit: int = MAX_BODY_BYTES) -> bytes:
            codings = [c.strip().lower() for v in self.headers.get_all("Transfer-Encoding") or [] for c in v.split(",")]
            lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
            if codings:
                if lengths:
                    raise _BadRequest("both Content-Length and Transfer-Encoding")
                if codings != ["chunked"]:
                    raise _BadRequest("a Transfer-Encoding other than chunked")
                return self._read_chunked(limit)
            if not lengths:
                return b""
            (value,) = lengths if len(lengths) == 1 else ("",)
            if not _CONTENT_LENGTH.fullmatch(value):
                raise _BadRequest("a Content-Length that is not one decimal number")
            length = int(value)
            if length > limit:
                raise _PayloadTooLarge
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                raise _BadRequest("a body shorter than its Content-Length")
            return body

        def _read_chunked(self, limit: int) -> bytes:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise _BadRequest("a chunk size line that is cut off or too long")
                size_text = line.split(b";", 1)[0].strip()
                if not _CHUNK_SIZE.fullmatch(size_text):
                    raise _BadRequest("a malformed chunk size")
                size = int(size_text, 16)
                if size == 0:
                    for _ in range(MAX_TRAILER_LINES):
                        trailer = self.rfile.readline(8192)
                        if trailer in (b"\r\n", b"\n"):
                            return b"".join(chunks)
                        if not trailer.endswith(b"\n"):
                            raise _BadRequest("a chunked body that is cut off")
                    raise _BadRequest("too many trailer lines")
                total += size
                if total > limit:
                    raise _PayloadTooLarge
                chunk = self.rfile.read(size)
                if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise _BadRequest("a chunk shorter than its size")
                chunks.append(chunk)

        def _write(self, response: Response) -> None:
            try:
                self.send_response(response.status)
                for key, value in response.headers:
                    if key.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD" and response.body:
                    self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                log.debug("the client went away before the answer to %s", printable(self.command, 20))

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # its request line holds the raw path (an approval token): _dispatch logs a redacted one

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s - %s", self.address_string(), format)  # not the args: they may hold the raw path

    return Handler


_RETRY_LINE = re.compile(rb"^retry: [0-9]+\n\n")
_EVENT_ID_LINE = re.compile(rb"^id: ([^\r\n]+)$", re.M)


def _header(response: Response, name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in reversed(response.headers) if key.lower() == wanted), None)


def _parse_query(query: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parsed.setdefault(key, []).append(value)
    return parsed

