"""A tiny upstream in a thread: answers every GET with a chosen status and body and records the requests.

Used where a test needs to see exactly which path, query and headers an upstream received.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_LIST = {"object": "list", "data": [{"id": "gpt-test-1", "object": "model"},
                                          {"id": "gpt-test-2", "object": "model"}]}


class StubUpstream:
    def __init__(self, status: int = 200, body: bytes | dict | None = None, delay: float = 0.0,
                 headers: dict | None = None):
        self.status = status
        self.body = MODEL_LIST if body is None else body
        self.delay = delay
        self.headers = headers or {}
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append({"path": self.path, "headers": headers})
                if stub.delay:
                    time.sleep(stub.delay)  # simulating a slow upstream, not synchronising
                payload = stub.body if isinstance(stub.body, bytes) else json.dumps(stub.body).encode()
                try:
                    self.send_response(stub.status)
                    for name, value in stub.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
