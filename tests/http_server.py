"""A loopback HTTP server for download tests, with injectable faults.

Serves in-memory files on ``127.0.0.1`` at an ephemeral port, from a
daemon thread, and stops when its context exits. Every request is
counted; past ``max_requests`` the server answers 503, so a retry loop
in the code under test cannot run away.

Faults (per path, set with :meth:`LoopbackServer.fault`):

* ``"404"``: answer 404 Not Found.
* ``"drop"``: announce the full ``Content-Length``, send half the body and
  close the connection.
* ``"slow"``: wait ``slow_seconds`` before answering at all.
* ``"corrupt"``: send a body of the same length with one byte flipped.

A gate (:meth:`LoopbackServer.gate`) holds every answer for a path until
``n`` requests for it have arrived (or ``timeout`` seconds pass), so that
concurrent downloads are certain to overlap.

A fault applies to the next ``times`` requests for that path (default 1)
and then the file is served normally, so a retry after the fault succeeds.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time


class LoopbackServer:
    def __init__(self, *, max_requests=200, slow_seconds=3.0, chunk_delay=0.0):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.requests: list[str] = []
        self.max_requests = max_requests
        self.slow_seconds = slow_seconds
        self.chunk_delay = chunk_delay  # seconds between 64 KiB chunks
        self._lock = threading.Lock()
        self._gates: dict[str, tuple[int, float]] = {}
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._httpd = None
        self._thread = None

    # -- setup ---------------------------------------------------------
    def add(self, path, data):
        self.files["/" + path.lstrip("/")] = bytes(data)
        return self.url(path)

    def fault(self, path, kind, times=1):
        assert kind in ("404", "drop", "slow", "corrupt"), kind
        self.faults["/" + path.lstrip("/")] = [kind, times]

    def gate(self, path, n, timeout=60.0):
        self._gates["/" + path.lstrip("/")] = (n, timeout)

    def url(self, path=""):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{path.lstrip('/')}"

    def count(self, path):
        return self.requests.count("/" + path.lstrip("/"))

    # -- lifecycle -----------------------------------------------------
    def __enter__(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802  (http.server's naming)
                server._handle(self)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()  # wakes "slow" handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        return False

    # -- serving -------------------------------------------------------
    def _take_fault(self, path):
        with self._lock:
            self.requests.append(path)
            self._arrived.notify_all()
            over = len(self.requests) > self.max_requests
            entry = self.faults.get(path)
            if entry is None:
                return over, None
            kind = entry[0]
            entry[1] -= 1
            if entry[1] <= 0:
                del self.faults[path]
            return over, kind

    def _handle(self, req):
        path = req.path.split("?")[0]
        over, kind = self._take_fault(path)
        if path in self._gates:
            n, timeout = self._gates[path]
            with self._arrived:
                self._arrived.wait_for(
                    lambda: self.requests.count(path) >= n or self._stop.is_set(), timeout
                )
        if over:
            req.send_error(503, "request budget of the test server exhausted")
            return
        if kind == "slow":
            self._stop.wait(self.slow_seconds)
        if kind == "404" or path not in self.files:
            req.send_error(404, "Not Found")
            return
        data = self.files[path]
        if kind == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        req.send_response(200)
        req.send_header("Content-Type", "application/octet-stream")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        body = data[: len(data) // 2] if kind == "drop" else data
        with contextlib.suppress(OSError):
            for start in range(0, len(body), 1 << 16):
                req.wfile.write(body[start : start + (1 << 16)])
                if self.chunk_delay:
                    time.sleep(self.chunk_delay)
            req.wfile.flush()
        if kind == "drop":
            req.close_connection = True
