"""/metrics, /health and /ready for processes that are not the Faust worker (sink, embedded runner)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def serve(registry: CollectorRegistry, bind: str, port: int,
          ready: Callable[[], bool] = lambda: True) -> ThreadingHTTPServer:
    """Serve in a daemon thread; returns the server (``server.server_address`` has the real port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/health":
                self._send(200, orjson.dumps({"status": "ok"}), "application/json")
            elif path == "/ready":
                ok = ready()
                self._send(200 if ok else 503, orjson.dumps({"ready": ok}), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # no access log: paths only, but keep quiet
            return

    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="custodes-http", daemon=True).start()
    return server
