"""A local fake OpenAI-compatible chat-completions server on 127.0.0.1: answers from a
script, one entry per request (a JSON content string, or ("status", code), or
("sleep", seconds)), and keeps the requests it got (bodies, and their headers)."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = str | tuple[str, float]


class FakeLLM:
    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        #: the answer to a request when the script is used up (default: "{}")
        self.respond: Callable[[dict[str, Any]], str] = lambda _request: "{}"
        self.base_url = ""


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = json.loads(body)
            fake.requests.append(request)
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            answer = fake.script.pop(0) if fake.script else fake.respond(request)
            if isinstance(answer, tuple) and answer[0] == "sleep":
                time.sleep(answer[1])
                answer = "{}"
            if isinstance(answer, tuple):
                self._send(int(answer[1]), {"error": {"message": "slow down"}})
                return
            self._send(200, {
                "id": "c1", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer}}],
            })  # fmt: skip

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
