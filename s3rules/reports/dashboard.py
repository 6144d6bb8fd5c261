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
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from ..errors import S3RulesError

READY_WAIT = 120.0   # a request before the first refresh has ended waits for it (seconds)


class Dashboard:
    """The latest statuses, refreshed in the background by ``refresh`` (-> {"workflows": one dict
    per workflow: batchfile, columns, rules, total, in_flight, cost, or error; "columns": the
    table's columns, in order})."""

    def __init__(self, refresh: Callable[[], dict], report: Callable[[int], str], interval: float):
        self.refresh, self.report, self.interval = refresh, report, interval
        self.latest: dict = {"updated": None, "interval": interval, "workflows": [], "columns": []}
        self.ready = threading.Event()
        self._stop = threading.Event()

    def update(self) -> None:
        self.latest = {"updated": round(time.time(), 3), "interval": self.interval, **self.refresh()}
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


REPORT = re.compile(r"/report/([0-9]{1,6})")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def handler_for(board: Dashboard, page: Callable[[dict], str], names: frozenset[str] | None):
    """The request handler: GET /, /status.json and /report/<n>; HEAD alike; nothing else.
    ``names``: the Host headers it answers (None: any), so that a web page elsewhere cannot
    read it through a DNS name that points at loopback."""

    class Handler(_Answers):
        def do_GET(self) -> None:   # noqa: N802 - the http.server name
            if names is not None and self.headers.get("Host", "").lower() not in names:
                self.send_error(HTTPStatus.FORBIDDEN, "unknown Host", "the dashboard answers only by the address "
                                                                    "it printed")
                return
            board.ready.wait(READY_WAIT)
            path = self.path.split("?", 1)[0]
            report = REPORT.fullmatch(path)
            if path == "/":
                self._send(page(board.latest).encode(), "text/html; charset=utf-8")
            elif path == "/status.json":
                self._send(json.dumps(board.latest).encode(), "application/json")
            elif report and int(report.group(1)) < len(board.latest["workflows"]):
                try:
                    body = board.report(int(report.group(1)))
                except Exception as exc:   # noqa: BLE001 - a broken Batchfile, AWS: said in the body
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "cannot make the report",
                                    str(exc) if isinstance(exc, S3RulesError) else f"{type(exc).__name__}: {exc}")
                    return
                self._send(body.encode(), "text/html; charset=utf-8")
            else:
                self.send_error(HTTPStatus.NOT_FOUND)

        def do_HEAD(self) -> None:   # noqa: N802
            self.do_GET()

        def _refuse(self) -> None:
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the dashboard is read-only")

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    return Handler


class _Answers(BaseHTTPRequestHandler):
    """How the dashboard answers: a whole body, never cached; no line per request on the terminal;
    an error's explanation as it was written (a Batchfile error's caret line)."""

    server_version = "s3rules-dashboard"
    error_message_format = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>%(code)d %(message)s</title>'
                            '</head><body><h1>%(code)d %(message)s</h1><pre>%(explain)s</pre></body></html>')

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:   # noqa: A002 - the http.server name
        pass


def serve(board: Dashboard, page: Callable[[dict], str], host: str, port: int) -> ThreadingHTTPServer:
    """The server, bound (``port`` 0: any free one) and not yet serving; the refresh thread runs.
    On loopback it answers only requests addressed to loopback."""
    server = ThreadingHTTPServer((host, port), handler_for(board, page, None))
    if host in LOOPBACK:   # the port is known once bound (port 0: any free one)
        bound = server.server_address[1]
        server.RequestHandlerClass = handler_for(board, page, frozenset(f"{name}:{bound}" for name in LOOPBACK))
    server.daemon_threads = True
    threading.Thread(target=board.run, name="s3rules-dashboard-refresh", daemon=True).start()
    return server
