"""API Gateway (REST API, Lambda proxy integration) as a real local HTTP server.

Requests are matched against the topology's routes and turned into the proxy event API Gateway sends
(``resource``, ``headers`` + ``multiValueHeaders`` as sent, query strings as ``None`` when absent,
``pathParameters``, ``requestContext``, a text body or base64 with ``isBase64Encoded``). The function's
answer is written back the way API Gateway does: ``headers`` and ``multiValueHeaders`` merged, a base64
body decoded, and ``502 {"message": "Internal server error"}`` when the function fails or answers
something that is not a proxy response. The local fakes are mounted under ``/_local/``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from interlock.local import get_logger
from interlock.local.fakes import LocalFakes
from interlock.local.functions import ACCOUNT_ID, Invocation
from interlock.local.http_types import Request, Response, json_response
from interlock.topology import Route, Topology

log = get_logger(__name__)

STAGE = "local"
API_ID = "interlocal"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

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
        self.fakes = fakes or LocalFakes()
        self._invoke: Invoke | None = None
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
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
        """The request's path for the console, with what may be a credential hidden: the value of a path
        parameter named in :data:`CREDENTIAL_PARAMETERS` (an approval token) and every query value (WhatsApp's
        ``hub.verify_token``). The query's names stay, so the console still says what was asked."""
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
        return shown + ("?" + "&".join(f"{name}={HIDDEN}" for name in names) if names else "")

    def respond(self, request: Request, raw_path: str, source_ip: str) -> Response:
        """The gateway's answer to one request (kept free of sockets so it is testable directly)."""
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
        if not invocation.ok:
            assert invocation.error is not None
            log.error("%s %s: function %s failed: %s: %s", request.method, match.route.path, match.route.function,
                      invocation.error.error_type, invocation.error.error_message, exc_info=invocation.exception)
            return _internal_error(amzn)
        try:
            response = proxy_response(invocation.payload)
        except MalformedProxyResponse as exc:
            log.error("%s %s: malformed Lambda proxy response from %s: %s", request.method, match.route.path,
                      match.route.function, exc)
            return _internal_error(amzn)
        headers = response.headers
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers = [*headers, ("Content-Type", "application/json")]
        return Response(response.status, [*headers, *amzn], response.body)


def _internal_error(extra: list[tuple[str, str]]) -> Response:
    answer = json_response(502, {"message": "Internal server error"})
    return Response(answer.status, [*answer.headers, *extra], answer.body)


class _PayloadTooLarge(Exception):
    pass


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "interlock-local"

        def version_string(self) -> str:
            return self.server_version

        def _dispatch(self) -> None:
            started = time.monotonic()
            split = urlsplit(self.path)
            try:
                body = self._read_body()
            except _PayloadTooLarge:
                self._write(json_response(413, {"message": "Request Too Long"}))
                return
            request = Request(
                method=self.command,
                path=unquote(split.path) or "/",
                query=_parse_query(split.query),
                headers=list(self.headers.items()),
                body=body,
            )
            try:
                response = gateway.respond(request, split.path or "/", self.client_address[0])
            except Exception:
                log.exception("%s %s: the local gateway failed", self.command,
                              gateway.loggable(self.command, split.path, split.query))
                response = json_response(500, {"message": "Internal server error"})
            self._write(response)
            log.info("%s %s -> %d (%.0f ms)", self.command, gateway.loggable(self.command, split.path, split.query),
                     response.status, (time.monotonic() - started) * 1000)

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return self._read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise _PayloadTooLarge
            return self.rfile.read(length) if length > 0 else b""

        def _read_chunked(self) -> bytes:
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _PayloadTooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        def _write(self, response: Response) -> None:
            try:
                self.send_response(response.status)
                for key, value in response.headers:
                    if key.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD" and response.body:
                    self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                log.debug("the client went away before the answer to %s", self.command)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # its request line holds the raw path (an approval token): _dispatch logs a redacted one

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s - %s", self.address_string(), format)  # not the args: they may hold the raw path

    for method in METHODS:
        setattr(Handler, f"do_{method}", Handler._dispatch)
    return Handler


def _parse_query(query: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parsed.setdefault(key, []).append(value)
    return parsed

