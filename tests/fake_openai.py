"""A fake OpenAI endpoint that speaks the Chat Completions HTTP protocol, on a real local socket.

The code under test is the real ``openai`` SDK pointed at this server by base URL, exactly as it would be
pointed at Azure OpenAI, vLLM or a LiteLLM proxy. The server records every request (headers and JSON
body) and answers from a script: each queued :class:`Reply` is used once, in order; when the script is
empty, ``default`` (a function of the request body) answers.

    with FakeOpenAI() as fake:
        fake.script(Reply.status(429, headers={"retry-after": "0.2"}), Reply.answer({...}))
        client = openai.OpenAI(api_key="test", base_url=fake.base_url)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a timeout, when longer than the client waits)
    chunk_delay: float = 0.02  # streamed (the request asked ``stream``): seconds between the answer's pieces

    @classmethod
    def answer(cls, content: dict[str, Any] | str, tokens_in: int = 120, tokens_out: int = 30,
               model: str = "", finish_reason: str = "stop") -> Reply:
        """A completion whose message content is ``content`` (a dict is sent as its JSON text)."""
        text = content if isinstance(content, str) else json.dumps(content)
        return cls(body=completion({"role": "assistant", "content": text, "refusal": None}, tokens_in,
                                   tokens_out, model, finish_reason))

    @classmethod
    def refusal(cls, text: str = "I'm sorry, I can't help with that.", tokens_in: int = 120) -> Reply:
        return cls(body=completion({"role": "assistant", "content": None, "refusal": text}, tokens_in, 12, "",
                                   "stop"))

    @classmethod
    def error(cls, status: int, headers: dict[str, str] | None = None, message: str = "fake error") -> Reply:
        return cls(status=status, headers=headers or {},
                   body={"error": {"message": message, "type": "fake", "param": None, "code": None}})

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls(delay=seconds, body=completion({"role": "assistant", "content": "{}"}, 1, 1, "", "stop"))


def completion(message: dict[str, Any], tokens_in: int, tokens_out: int, model: str,
               finish_reason: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                  "total_tokens": tokens_in + tokens_out},
    }


CHUNK_CHARS = 12


def stream_chunks(completion_body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A completion as the ``chat.completion.chunk`` objects that stream it."""
    choice = completion_body["choices"][0]
    message = choice["message"]
    base = {"id": completion_body["id"], "object": "chat.completion.chunk", "created": completion_body["created"],
            "model": completion_body["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    content = message.get("content") or ""
    chunks += [chunk({"content": content[i:i + CHUNK_CHARS]}) for i in range(0, len(content), CHUNK_CHARS)]
    if message.get("refusal"):
        chunks.append(chunk({"refusal": message["refusal"]}))
    chunks.append(chunk({}, choice.get("finish_reason") or "stop"))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": completion_body["usage"]})
    return chunks


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def schema_name(self) -> str:
        fmt = self.body.get("response_format") or {}
        return str((fmt.get("json_schema") or {}).get("name", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


def _unanswered(body: dict[str, Any]) -> Reply:
    return Reply.error(500, message="the fake has no scripted reply for this request")


class FakeOpenAI:
    def __init__(self, default: Callable[[dict[str, Any]], Reply] = _unanswered) -> None:
        self.default = default
        self.requests: list[Seen] = []
        self.streamed = 0  # answers sent as a stream
        self.pieces_sent: list[tuple[float, str]] = []  # each streamed piece of content, with when it went out
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparseable": raw.decode("utf-8", "replace")}
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(seen)
                    reply = fake._script.pop(0) if fake._script else None
                if reply is None:
                    reply = fake.default(body)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    reply = Reply.error(404, message=f"no route {self.path}")
                if reply.delay:
                    time.sleep(reply.delay)
                if body.get("stream") is True and reply.status == 200 and isinstance(reply.body, dict):
                    self._stream(reply, body)
                    return
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
                """The completion as the streaming protocol sends it: ``chat.completion.chunk`` events, the content
                in pieces of :data:`CHUNK_CHARS` (:attr:`Reply.chunk_delay` apart), the usage last when asked for,
                then ``data: [DONE]``."""
                try:
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("cache-control", "no-cache")
                    self.send_header("connection", "close")
                    self.end_headers()
                    for chunk in stream_chunks(reply.body, bool((body.get("stream_options") or {}).get(
                            "include_usage"))):
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        piece = (chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None)
                        if piece:
                            with fake._lock:
                                fake.pieces_sent.append((time.time(), piece))
                        if reply.chunk_delay:
                            time.sleep(reply.chunk_delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    with fake._lock:
                        fake.streamed += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
