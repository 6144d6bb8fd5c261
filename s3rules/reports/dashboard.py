"""``s3rules dashboard``: the status of several workflows as a live web page, read-only, on loopback.

The standard library's ``ThreadingHTTPServer`` serves it: three GET routes over data this
process computes, no forms, no sessions, so a framework would add only weight. A thread
refreshes the statuses every ``interval`` seconds (one planning pass per workflow, shared
listings); the page asks ``/status.json`` as often and redraws its table, so a job that
finishes shows up within about two intervals. ``/report/<n>`` is workflow n's report, made on
demand. Nothing here submits, cancels or writes: every other method is refused.
"""
from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from ..errors import S3RulesError


class Dashboard:
    """The latest statuses, refreshed in the background by ``refresh`` (-> one dict per
    workflow: batchfile, columns, rules, total, in_flight, cost, or error)."""

    def __init__(self, refresh: Callable[[], list[dict]], report: Callable[[int], str], interval: float):
        self.refresh, self.report, self.interval = refresh, report, interval
        self.latest: dict = {"updated": None, "interval": interval, "workflows": []}
        self.ready = threading.Event()
        self._stop = threading.Event()

    def update(self) -> None:
        self.latest = {"updated": round(time.time(), 3), "interval": self.interval, "workflows": self.refresh()}
        self.ready.set()

    def run(self) -> None:
        """Refresh until stopped; a failed refresh is shown, not fatal."""
        while not self._stop.is_set():
            try:
                self.update()
            except Exception as exc:   # noqa: BLE001 - the page says it; the next refresh may work
                self.latest = {**self.latest, "error": f"{type(exc).__name__}: {exc}"}
                self.ready.set()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()


def handler_for(board: Dashboard, page: Callable[[dict], str]):
    """The request handler: GET /, /status.json and /report/<n>; HEAD alike; nothing else."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "s3rules-dashboard"

        def do_GET(self) -> None:   # noqa: N802 - the http.server name
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(page(board.latest).encode(), "text/html; charset=utf-8")
            elif path == "/status.json":
                self._send(json.dumps(board.latest).encode(), "application/json")
            elif path.startswith("/report/") and path[8:].isdigit() and int(path[8:]) < len(board.latest["workflows"]):
                try:
                    body = board.report(int(path[8:]))
                except S3RulesError as exc:
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, f"cannot make the report: {exc}")
                    return
                self._send(body.encode(), "text/html; charset=utf-8")
            else:
                self.send_error(HTTPStatus.NOT_FOUND)

        def do_HEAD(self) -> None:   # noqa: N802
            self.do_GET()

        def _refuse(self) -> None:
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the dashboard is read-only")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format, *args) -> None:   # noqa: A002 - quiet: the terminal shows the URL only
            pass

    return Handler


def serve(board: Dashboard, page: Callable[[dict], str], host: str, port: int) -> ThreadingHTTPServer:
    """The server, bound (``port`` 0: any free one) and not yet serving; the refresh thread runs."""
    server = ThreadingHTTPServer((host, port), handler_for(board, page))
    server.daemon_threads = True
    threading.Thread(target=board.run, name="s3rules-dashboard-refresh", daemon=True).start()
    return server
