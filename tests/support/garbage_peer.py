"""A process that answers GraphQL requests with garbage, one kind after another (the fault
suite's peer that "answers garbage"): not JSON, JSON without data, data of the wrong shape,
values of the wrong type, a 500, JSON nested far too deep. ``/healthz`` answers 200.

    python -m tests.support.garbage_peer PORT
"""

from __future__ import annotations

import itertools
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GARBAGE = [
    (200, b"this is not json"),
    (200, b'{"nope": 1}'),
    (200, b'{"data": {"_entities": "not a list"}}'),
    (
        200,
        b'{"data": {"_entities": [{"visits": {"nodes": [{"beginDate": "soon", "visitId": 7}]}}]}}',
    ),
    (500, b"oops"),
    (200, b'{"data": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"),
]
_turn = itertools.cycle(range(len(GARBAGE)))


class Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        kind = next(_turn)
        print(f"served garbage {kind}", flush=True)  # the test checks every kind was met
        self._answer(*GARBAGE[kind])

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


def main() -> None:
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Garbage).serve_forever()


if __name__ == "__main__":
    main()
