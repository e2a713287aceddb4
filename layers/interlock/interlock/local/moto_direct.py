"""boto3 calls handed to moto without the HTTP emulation around them: :func:`install`, undone by what it returns.

Under ``mock_aws`` a boto3 call is serialised and validated (botocore), then prepared as an HTTP request: its
endpoint's retry handlers are set up, it is signed with SigV4 (a canonical request, an HMAC chain), moto's stubber
catches it at ``before-send``, matches its URL against every mocked service's patterns, turns it into a werkzeug
request, dispatches it, and botocore parses the answer. In the local runtime, where every AWS call of every handler
is one of these, the signing and the preparing (with moto's listing of its handler's methods, below) were a
quarter to a half of each call's CPU.

This hands the call to moto one step earlier, where the client makes its request (``BaseClient._make_request``),
when botocore has validated and serialised it: the same request (method, URL, headers, body) goes to the same moto
stubber (``process_request``, which still matches its URL and builds the werkzeug request), and the answer
is parsed by botocore's own parser for the protocol, modelled error fields included, exactly as the endpoint
parses it. What is skipped is only what cannot change what moto does: the signature (moto does not check one; the
``Authorization`` header moto reads for the caller's access key and region is still sent, with the client's own
credentials and region, unsigned), the retry handlers (moto never throttles), and the HTTP send itself. Streaming
operations keep the usual path. Each client's ``after-call`` events and error raising are botocore's own, so the
handlers above it see the same answers and the same exceptions.

Only calls made while the local cloud runs (:func:`install` to its undo) take this path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

_enabled = threading.Event()


def _utf8(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


def _authorization(request_signer: Any) -> str | None:
    """What moto reads of a SigV4 header (the access key, the region), with no signature."""
    credentials = getattr(request_signer, "_credentials", None)
    access_key = getattr(credentials, "access_key", None)
    if not access_key:
        return None
    region = request_signer._region_name
    service = request_signer._signing_name
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/20000101/{region}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=unsigned")


def direct(client: Any, model: Any, params: dict[str, Any]) -> Any:
    """The answer ``(http_response, parsed)`` from moto, or None where the usual path must take the call. The
    answer is parsed as the client's endpoint parses one (its parser factory, its modelled error fields)."""
    if not _enabled.is_set():
        return None
    from moto.core.models import botocore_stubber

    if not botocore_stubber.enabled:
        return None
    if model.has_streaming_input or model.has_streaming_output or model.has_event_stream_output:
        return None
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from botocore.compat import HTTPHeaders
    from botocore.endpoint import convert_to_response_dict
    from moto.core.botocore_stubber import MockRawResponse

    headers = HTTPHeaders()
    for name, value in params["headers"].items():
        headers[name] = value
    authorization = _authorization(client._request_signer)
    if authorization is not None and "Authorization" not in headers:
        headers["Authorization"] = authorization
    body = params["body"]
    if body == b"":
        body = None
    if isinstance(body, dict):  # a query-protocol body, encoded as botocore's request preparer encodes it
        body = urlencode([(_utf8(k), _utf8(v)) for k, v in body.items()], doseq=True)
    request = AWSPreparedRequest(method=params["method"], url=params["url"], headers=headers, body=body,
                                 stream_output=False)
    answer = botocore_stubber.process_request(request)
    if answer is None:
        return None
    status, response_headers, response_body = answer
    http_response = AWSResponse(request.url, status, response_headers, MockRawResponse(response_body))
    response_dict = convert_to_response_dict(http_response, model)
    endpoint = client._endpoint
    parser = endpoint._response_parser_factory.create_parser(model.service_model.resolved_protocol)
    parsed = parser.parse(response_dict, model.output_shape)
    if http_response.status_code >= 300:
        endpoint._add_modeled_error_fields(response_dict, parsed, model, parser)
    return http_response, parsed


def _cached_method_names(original: Callable[[Any], list[str]]) -> Callable[[Any], frozenset[str]]:
    """moto looks up which actions a service's response class has (``inspect.getmembers``) at every call; a class's
    methods do not change while it serves, so each class is looked up once."""
    names: dict[Any, frozenset[str]] = {}

    def method_names_from_class(clazz: Any) -> frozenset[str]:
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = frozenset(original(clazz))
        return found

    return method_names_from_class


def install() -> Callable[[], None]:
    import botocore.client
    from moto.core import responses

    original = botocore.client.BaseClient._make_request
    original_names = responses.method_names_from_class

    def _make_request(self: Any, operation_model: Any, request_dict: dict[str, Any],
                      request_context: Any) -> Any:
        try:
            answer = direct(self, operation_model, request_dict)
        except Exception as exc:  # what the endpoint's usual path tells the client's handlers, too
            self.meta.events.emit(
                f"after-call-error.{self._service_model.service_id.hyphenize()}.{operation_model.name}",
                exception=exc, context=request_context)
            raise
        if answer is None:
            return original(self, operation_model, request_dict, request_context)
        return answer

    botocore.client.BaseClient._make_request = _make_request
    responses.method_names_from_class = _cached_method_names(original_names)  # type: ignore[assignment]
    _enabled.set()

    def uninstall() -> None:
        _enabled.clear()
        botocore.client.BaseClient._make_request = original
        responses.method_names_from_class = original_names

    return uninstall
