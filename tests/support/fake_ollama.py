"""A local HTTP server that speaks the part of Ollama's API ChatOllama uses.

It lets the Ollama provider be tested at its real HTTP boundary (request bodies,
streaming NDJSON replies, token counts) without an Ollama install. Replies come
from a function of the request's messages; every request body is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict[str, Any]]], str]


class FakeOllama:
    def __init__(
        self,
        responder: Responder,
        models: tuple[str, ...] = ("fake:latest",),
        tags_delay_s: float = 0.0,
    ) -> None:
        self.responder = responder
        self.models = models
        self.tags_delay_s = tags_delay_s  # a slow server, for code that must not wait on it
        self.requests: list[dict[str, Any]] = []


def _handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send_json(self, payload: Any, status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/api/tags":
                time.sleep(fake.tags_delay_s)
                self._send_json({"models": [{"name": m, "model": m} for m in fake.models]})
            else:
                self._send_json({"error": "not found"}, 404)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/api/chat":
                self._send_json({"error": "not found"}, 404)
                return
            fake.requests.append(request)
            text = fake.responder(request["messages"])
            prompt_chars = sum(len(m.get("content", "")) for m in request["messages"])
            chunks = [
                {
                    "model": request["model"],
                    "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": text},
                    "done": False,
                },
                {
                    "model": request["model"],
                    "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": prompt_chars // 4,
                    "eval_count": len(text) // 4,
                    "total_duration": 1_000_000,
                },
            ]
            if request.get("stream", True):
                body = "".join(json.dumps(c) + "\n" for c in chunks).encode()
                content_type = "application/x-ndjson"
            else:
                body = json.dumps({**chunks[1], "message": chunks[0]["message"]}).encode()
                content_type = "application/json"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(fake: FakeOllama) -> Iterator[str]:
    """Serve `fake` on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
