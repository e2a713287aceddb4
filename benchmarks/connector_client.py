"""Connector calls with one reused ``httpx.Client`` against a new client per call, measured in the same run.

Each connector (``interlock.connectors``) used to build an ``httpx.Client`` for every call: a new connection pool, a
new TCP connection and a new TLS context (httpx builds an ``ssl.SSLContext``, loading the CA bundle, whenever it
builds a transport, even for a plain-HTTP URL). Now each connector instance keeps one client
(``interlock.connectors.http.SharedClient``). This script serves a small JSON answer from a local HTTP server and
times ``calls`` CRM lookups (``HttpCrm.find_contact_by_email``, the lead workflow's dedupe) both ways, interleaved
in rounds so that machine noise hits both alike, and prints the median per call and the ratio.

    python benchmarks/connector_client.py [--calls 200] [--rounds 5]

This is a benchmark, not a test: it prints numbers and never fails a build.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = json.dumps({"total": 1, "results": [{"id": "5001", "properties": {"email": "ada@analytical.example"}}]})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: what a reused client's pool relies on
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait between them

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = ANSWER.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _per_call(base: str, calls: int) -> float:
    from interlock.connectors.crm import HttpCrm

    started = time.perf_counter()
    for _ in range(calls):
        crm = HttpCrm(base)  # a new connector, so a new client, for every call: what every call used to pay
        crm.find_contact_by_email("ada@analytical.example")
        crm._http.close()
    return (time.perf_counter() - started) / calls


def _shared(base: str, calls: int) -> float:
    from interlock.connectors.crm import HttpCrm

    crm = HttpCrm(base)
    started = time.perf_counter()
    for _ in range(calls):
        crm.find_contact_by_email("ada@analytical.example")
    elapsed = time.perf_counter() - started
    crm._http.close()
    return elapsed / calls


def measure(calls: int, rounds: int) -> dict[str, float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        _shared(base, 5)  # warm imports
        new, reused = [], []
        for _ in range(rounds):
            new.append(_per_call(base, calls))
            reused.append(_shared(base, calls))
    finally:
        server.shutdown()
        server.server_close()
    per_call, shared = statistics.median(new), statistics.median(reused)
    return {"new_client_ms": per_call * 1000, "shared_client_ms": shared * 1000, "ratio": per_call / shared}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.calls, args.rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"CRM lookup, a new httpx.Client per call: {result['new_client_ms']:.2f} ms per call")
        print(f"CRM lookup, one reused httpx.Client:     {result['shared_client_ms']:.2f} ms per call")
        print(f"ratio (new / reused): {result['ratio']:.1f}x  ({args.calls} calls x {args.rounds} rounds, median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
