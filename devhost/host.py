"""The local Functions host: serves a v2-model app's HTTP functions and runs its timers.

See ``devhost/README.md`` for the behaviour and the known differences from the real host.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from azure.functions.decorators.core import Trigger
from azure.functions.http import HttpRequest as WorkerHttpRequest
from azure.functions.timer import TimerRequest

from devhost.invoke import AsyncRunner, EncodedResponse, Invoker
from devhost.loader import AppLoadError, LoadedApp, load_app, load_local_settings, route_prefix
from devhost.queues import (
    DEFAULT_LEASE_SECONDS,
    QueueListener,
    QueueTriggerError,
    connection_description,
    queue_client_factory,
    queue_options,
)
from devhost.routes import RouteTable, expand, full_template
from devhost.schedule import (
    IntervalSchedule,
    Schedule,
    ScheduleError,
    parse_schedule,
    resolve_setting_references,
)

__all__ = ["FunctionInfo", "LocalHost"]

log = logging.getLogger("devhost")
access_log = logging.getLogger("devhost.http")

KEY_SETTING = "FUNCTIONS_KEY"
MAX_BODY_BYTES = 100 * 1024 * 1024  # the host's default request body limit (100 MB)
_RESERVED_FIRST_SEGMENTS = ("admin", "runtime")
_NO_BODY_STATUSES = (204, 304)
_EMPTY_TIME = "0001-01-01T00:00:00+00:00"
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE_RE = re.compile(r"^[\t\x20-\x7e]*$")
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CODE_PARAM_RE = re.compile(r"(?i)code(=|%3d)[^&;/?#]*")
MAX_LOGGED_TARGET = 200


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_disabled(name: str, environ: Mapping[str, str]) -> bool:
    for setting in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs_{name}_Disabled"):
        if environ.get(setting, "").strip().lower() in ("true", "1"):
            return True
    return False


@dataclass(frozen=True)
class FunctionInfo:
    """A function of the app as the host sees it."""

    name: str
    trigger: str  # the trigger binding type: "httpTrigger", "timerTrigger", ...
    route: str | None = None  # full template with the prefix, e.g. "/api/captures/{name}"
    methods: tuple[str, ...] | None = None  # None: every method
    auth_level: str | None = None  # "anonymous" | "function" | "admin"
    schedule: str | None = None  # the schedule with %SETTING% references resolved
    queue: str | None = None  # queue triggers: the queue name, %SETTING% references resolved
    connection: str | None = None  # queue triggers: the binding's connection name
    disabled: bool = False  # AzureWebJobs.<name>.Disabled
    problem: str | None = None  # why it cannot be served or scheduled


@dataclass
class _HttpFunction:
    info: FunctionInfo
    methods: frozenset[str] | None
    invoker: Invoker


@dataclass
class _TimerFunction:
    info: FunctionInfo
    invoker: Invoker
    schedule: Schedule | None
    run_on_startup: bool
    lock: threading.Lock
    last: datetime | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the connection threads itself, with a deadline
    request_queue_size = 128  # 32+ concurrent callers must not overflow the listen backlog

    def __init__(self, address: tuple[str, int], host: LocalHost) -> None:
        self.host = host
        self.lock = threading.Lock()
        self.closing = False
        self.handlers: set[_Handler] = set()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection dropped mid-answer (client gone, or closed by stop()): not worth a traceback.
        log.debug("connection error from %s", client_address[0] if client_address else "?", exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devhost"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are dropped after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.busy = False
        self.thread = threading.current_thread()
        # One write per answer, and no Nagle delay: keep-alive calls must not stall on delayed ACKs.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.handlers.add(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.lock:
                self.server.handlers.discard(self)

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            with self.server.lock:
                self.busy = True
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                return
            self._serve()
        except TimeoutError:
            self.close_connection = True
        finally:
            with self.server.lock:
                self.busy = False
                if self.server.closing:
                    self.close_connection = True

    # Never let http.server log request lines: they carry the ?code= key.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http.server: %s", format)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        log.info("rejected a malformed request (%d)", int(code))
        self.close_connection = True
        self._write(int(code), [], b"")

    def _read_body(self) -> bytes | int:
        """The request body, or an error status."""
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                size_text = line.split(b";", 1)[0].strip()
                if not _CHUNK_SIZE_RE.fullmatch(size_text):  # hex digits only: no sign, no "-1"
                    return 400
                length = int(size_text, 16)
                if length == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY_BYTES:
                    return 413
                chunks.append(self.rfile.read(length))
                self.rfile.readline(65537)
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        if not declared.strip().isdigit():
            return 400
        length = int(declared)
        if length > MAX_BODY_BYTES:
            return 413
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else 400

    def _serve(self) -> None:
        started = time.perf_counter()
        method = self.command.upper()
        target = self.path
        body = self._read_body()
        label = ""
        if isinstance(body, int):
            self.close_connection = True
            response = EncodedResponse(body, [], b"")
        else:
            try:
                response, label = self.server.host._respond(method, target, list(self.headers.items()), body)
            except Exception:  # a devhost bug must still answer (and never echo the request)
                log.error(
                    "devhost failed on %s %s\n%s",
                    method,
                    self.server.host.loggable(target),
                    self.server.host._masked_traceback(),
                )
                response = EncodedResponse(500, [], b"")
        # Logged before the answer goes out (so it is in the log once the caller has the answer).
        access_log.info(
            "%s %s -> %d%s (%.1f ms)",
            method,
            self.server.host.loggable(target),
            response.status,
            f" [{label}]" if label else "",
            (time.perf_counter() - started) * 1000,
        )
        self._write(response.status, response.headers, response.body, head=method == "HEAD")

    def _write(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes, *, head: bool = False
    ) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {status} {phrase}\r\n"]
        for name, value in headers:
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Date: {formatdate(usegmt=True)}\r\n")
        if status in _NO_BODY_STATUSES or 100 <= status < 200:
            body = b""
        else:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1")
        self.wfile.write(data if head else data + body)


def _validate_headers(headers: list[tuple[str, str]]) -> str | None:
    """Kestrel refuses control and non-ASCII characters in response headers (a 500 on Azure)."""
    for name, value in headers:
        if not name or not _TOKEN_RE.match(name):
            return f"invalid response header name {name!r}"
        if not _VALUE_RE.match(value):
            return f"invalid characters in the value of response header {name!r}"
    return None


class _Run:
    """One timer run: its Executing line goes out at INFO once the run shows it did something."""

    def __init__(self, executing: str) -> None:
        self.executing = executing
        self.announced = False

    def announce(self) -> None:
        if not self.announced:
            self.announced = True
            log.info("%s", self.executing)


_CURRENT_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("devhost_run", default=None)


class _ActivityWatch(logging.Handler):
    """First on the root logger: a record at INFO+ from the running function announces its run, so the
    Executing line is printed just before the function's first line (idle runs stay at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        run = _CURRENT_RUN.get()
        if run is not None and not run.announced and not record.name.startswith("devhost"):
            run.announce()


_ACTIVITY_WATCH = _ActivityWatch()
_WATCH_LOCK = threading.Lock()


def _watch_activity() -> None:
    root = logging.getLogger()
    with _WATCH_LOCK:
        if _ACTIVITY_WATCH not in root.handlers:
            root.handlers.insert(0, _ACTIVITY_WATCH)


_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date"})


class LocalHost:
    """A local stand-in for the Functions host, serving one v2-model app.

    Loading happens in the constructor (``local.settings.json``, ``host.json``, ``function_app``
    import, the single ``get_functions()`` call); :meth:`start` opens the port and, with
    ``run_timers``, starts the timer schedules. Use it as a context manager, or call :meth:`stop`.
    """

    def __init__(
        self,
        app_dir: str | os.PathLike[str] = ".",
        *,
        key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        run_timers: bool = False,
        timer_interval: float | None = None,
        load_settings: bool = True,
        method_mismatch_status: int = 405,
        run_queues: bool = False,
        queue_poll_interval: float | None = None,
        queue_lease: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.run_queues = run_queues
        self.queue_poll_interval = queue_poll_interval
        self.queue_lease = queue_lease
        if queue_poll_interval is not None and queue_poll_interval <= 0:
            raise ValueError("queue_poll_interval must be a positive number of seconds")
        if queue_lease < 1:
            raise ValueError("queue_lease must be at least 1 second")
        self._bind_host = host
        self._port = port
        self.run_timers = run_timers
        self.timer_interval = timer_interval
        if timer_interval is not None and timer_interval <= 0:
            raise ValueError("timer_interval must be a positive number of seconds")
        if method_mismatch_status not in (404, 405):
            raise ValueError("method_mismatch_status must be 404 (as on Azure) or 405")
        self.method_mismatch_status = method_mismatch_status
        self.applied_settings = load_local_settings(self.app_dir) if load_settings else {}
        if key is not None:
            self.key, self.key_source = key, "--key"
        elif os.environ.get(KEY_SETTING):
            self.key, self.key_source = os.environ[KEY_SETTING], KEY_SETTING
        else:
            self.key, self.key_source = secrets.token_urlsafe(32), "generated"
        if not self.key:
            raise ValueError("the function key must not be empty")
        self._key_bytes = self.key.encode("utf-8")

        self._added_path = str(self.app_dir) not in sys.path
        if self._added_path:
            sys.path.insert(0, str(self.app_dir))
        try:
            self.loaded: LoadedApp = load_app(self.app_dir)
        except BaseException:
            self._remove_path()
            raise
        self.route_prefix = route_prefix(self.loaded.host_json)
        self._runner = AsyncRunner()
        self._http: list[_HttpFunction] = []
        self._timers: dict[str, _TimerFunction] = {}
        self._queue_functions: dict[str, tuple[FunctionInfo, Invoker]] = {}
        self._listeners: list[QueueListener] = []
        self._functions: list[FunctionInfo] = []
        self._index()
        self._routes = RouteTable((f.info.route or "/", f.methods, i) for i, f in enumerate(self._http))

        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._timer_threads: list[threading.Thread] = []
        self._background: set[threading.Thread] = set()
        self._bg_lock = threading.Lock()
        self._stopped = False

    # -- indexing ------------------------------------------------------------------------------

    def _index(self) -> None:
        for function in self.loaded.functions:
            name = str(function.get_function_name())
            trigger = function.get_trigger()
            assert trigger is not None  # get_functions() refuses functions without one
            kind = str(trigger.get_binding_name())
            disabled = _is_disabled(name, os.environ)
            invoker = Invoker(function, self.app_dir, self._runner)
            if kind == "httpTrigger":
                self._index_http(name, trigger, invoker, disabled)
            elif kind == "timerTrigger":
                self._index_timer(name, trigger, invoker, disabled)
            elif kind == "queueTrigger":
                self._index_queue(name, trigger, invoker, disabled)
            else:
                problem = f"devhost does not run {kind} functions"
                log.warning("function %s: %s", name, problem)
                self._functions.append(FunctionInfo(name, kind, disabled=disabled, problem=problem))
            if invoker.problem:
                log.warning("%s: it will fail when invoked", invoker.problem)

    def _index_http(self, name: str, trigger: Trigger, invoker: Invoker, disabled: bool) -> None:
        route_text = getattr(trigger, "route", None) or name
        try:
            template = full_template(str(route_text), self.route_prefix)
        except ValueError as exc:
            raise AppLoadError(f"function {name}: {exc}") from exc
        first = template.strip("/").split("/", 1)[0].lower()
        if first in _RESERVED_FIRST_SEGMENTS:
            raise AppLoadError(
                f"function {name}: the route {template!r} conflicts with the host's built-in routes"
            )
        raw_methods = getattr(trigger, "methods", None)
        methods = frozenset(_enum_text(m).upper() for m in raw_methods) if raw_methods else None
        auth = _enum_text(getattr(trigger, "auth_level", None) or "function").lower()
        info = FunctionInfo(
            name=name,
            trigger="httpTrigger",
            route=template,
            methods=tuple(sorted(methods)) if methods else None,
            auth_level=auth,
            disabled=disabled,
            problem=invoker.problem,
        )
        self._functions.append(info)
        if not disabled:
            self._http.append(_HttpFunction(info, methods, invoker))

    def _index_queue(self, name: str, trigger: Trigger, invoker: Invoker, disabled: bool) -> None:
        raw = str(getattr(trigger, "queue_name", ""))
        connection = str(getattr(trigger, "connection", "") or "")
        problem: str | None = invoker.problem
        queue: str | None = None
        try:
            queue = resolve_setting_references(raw)
            connection_description(connection, os.environ)
        except (ScheduleError, QueueTriggerError) as exc:
            problem = f"queue {raw!r}: {exc}"
            log.error("function %s: %s", name, problem)
        info = FunctionInfo(
            name=name,
            trigger="queueTrigger",
            queue=queue,
            connection=connection,
            disabled=disabled,
            problem=problem,
        )
        self._functions.append(info)
        self._queue_functions[name] = (info, invoker)

    def _start_queues(self) -> None:
        """One listener per enabled queue function; refuses to start if any cannot run."""
        try:
            options = queue_options(self.loaded.host_json)
        except QueueTriggerError as exc:
            raise QueueTriggerError(f"queue triggers: {exc}") from exc
        runnable = [(i, inv) for i, inv in self._queue_functions.values() if not i.disabled]
        for info, _ in runnable:
            if info.problem or info.queue is None:
                raise QueueTriggerError(f"queue function {info.name}: {info.problem}")
        for info, invoker in runnable:
            assert info.queue is not None
            listener = QueueListener(
                info.name,
                info.queue,
                queue_client_factory(info.connection or "", os.environ),
                invoker.invoke,
                options,
                lease_seconds=self.queue_lease,
                max_poll_seconds=self.queue_poll_interval,
                mask=lambda text: text.replace(self.key, "***"),
            )
            self._listeners.append(listener.start())

    def _index_timer(self, name: str, trigger: Trigger, invoker: Invoker, disabled: bool) -> None:
        raw = str(getattr(trigger, "schedule", ""))
        problem: str | None = invoker.problem
        resolved: str | None = None
        schedule: Schedule | None = None
        try:
            resolved = resolve_setting_references(raw)
            schedule = parse_schedule(resolved)
        except ScheduleError as exc:
            problem = f"schedule {raw!r}: {exc}"
            log.error("function %s: %s", name, problem)
        if self.timer_interval is not None:
            schedule = IntervalSchedule(timedelta(seconds=self.timer_interval))
        info = FunctionInfo(
            name=name, trigger="timerTrigger", schedule=resolved, disabled=disabled, problem=problem
        )
        self._functions.append(info)
        self._timers[name] = _TimerFunction(
            info=info,
            invoker=invoker,
            schedule=schedule,
            run_on_startup=bool(getattr(trigger, "run_on_startup", False)),
            lock=threading.Lock(),
        )

    # -- public API ----------------------------------------------------------------------------

    @property
    def functions(self) -> list[FunctionInfo]:
        """Every indexed function, in the app's order."""
        return list(self._functions)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the host is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:7071`` (available once started)."""
        host = self._bind_host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def function_url(self, name: str, *, with_key: bool = True, **route_values: str) -> str:
        """URL of an HTTP function (``?code=<key>`` added for key-protected ones when ``with_key``)."""
        for function in self._http_all():
            if function.name == name:
                path = expand(function.route or "/", route_values)
                needs_key = with_key and function.auth_level != "anonymous"
                return f"{self.url}{path}" + (f"?code={quote(self.key, safe='')}" if needs_key else "")
        raise KeyError(f"no HTTP function named {name!r}")

    def _http_all(self) -> list[FunctionInfo]:
        return [f for f in self._functions if f.trigger == "httpTrigger"]

    def start(self) -> LocalHost:
        """Open the port, serve in a background thread, and start the timers when asked."""
        if self._server is not None or self._stopped:
            raise RuntimeError("a LocalHost can be started once")
        server_class = _Server6 if ":" in self._bind_host else _Server
        self._server = server_class((self._bind_host, self._port), self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="devhost-http",
            daemon=True,
        )
        self._serve_thread.start()
        if self.run_timers:
            _watch_activity()
            self._start_timers()
        if self.run_queues:
            self._start_queues()
        log.info("devhost listening on %s (routePrefix %r)", self.url, self.route_prefix)
        return self

    def serve_forever(self) -> None:
        """Block until :meth:`stop` is called from another thread (or a signal handler)."""
        self._stopping.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let in-flight requests and timer runs finish (up to ``timeout`` s), clean up."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout
        self._stopping.set()
        server = self._server
        if server is not None:
            server.shutdown()  # no new connections
            with server.lock:
                server.closing = True
                idle = [h for h in server.handlers if not h.busy]
            for handler in idle:
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
            with server.lock:
                threads = [h.thread for h in server.handlers]
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            server.server_close()
            if self._serve_thread is not None:
                self._serve_thread.join(max(0.0, deadline - time.monotonic()))
        for listener in self._listeners:
            listener.stop(deadline)
        with self._bg_lock:
            background = list(self._background)
        for thread in [*self._timer_threads, *background]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._runner.close()
        self._remove_path()
        log.info("devhost stopped")

    close = stop

    def __enter__(self) -> LocalHost:
        if self._server is None:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def trigger_timer(self, name: str, *, past_due: bool = False) -> None:
        """Run a timer-triggered function once, now, in the calling thread; its exception propagates.

        Runs never overlap: a scheduled run of the same function in progress is waited for.
        """
        timer = self._timers.get(name)
        if timer is None:
            raise KeyError(f"no timer-triggered function named {name!r} (timers: {sorted(self._timers)})")
        self._fire(timer, past_due=past_due, reason="Manual trigger")

    def next_occurrence(self, name: str, after: datetime | None = None) -> datetime | None:
        """When the timer function ``name`` is next due (UTC), or None if its schedule is unusable."""
        timer = self._timers[name]
        if timer.schedule is None:
            return None
        return timer.schedule.next_after(after or _utcnow())

    def banner(self) -> str:
        """The start-up text: URL, key origin, each function (key-protected URLs carry ``?code=``)."""
        lines = [
            f"Functions app: {self.loaded.script}",
            f"Listening on {self.url} (routePrefix {self.route_prefix!r})",
            f"Function key ({self.key_source}): {self.key}",
            "",
            "Functions:",
        ]
        for info in self._functions:
            state = " [disabled]" if info.disabled else ""
            problem = f"  !! {info.problem}" if info.problem else ""
            if info.trigger == "httpTrigger":
                methods = ",".join(info.methods) if info.methods else "*"
                lines.append(f"  {info.name}: [{methods}] {self.function_url(info.name)}{state}{problem}")
            elif info.trigger == "timerTrigger":
                timer = self._timers[info.name]
                if self.run_timers and not info.disabled and timer.schedule is not None:
                    when = f"next {self.next_occurrence(info.name):%Y-%m-%d %H:%M:%S} UTC"
                    if self.timer_interval is not None:
                        when += f", every {self.timer_interval:g} s (--timer-interval)"
                else:
                    when = "not scheduled (use --timers)" if not self.run_timers else "not scheduled"
                trigger_url = f"POST {self.url}/admin/functions/{info.name}"
                lines.append(
                    f"  {info.name}: timerTrigger {info.schedule!r}, {when}{state}{problem}\n"
                    f"      run now: {trigger_url} with header x-functions-key"
                )
            elif info.trigger == "queueTrigger":
                running = "polled" if self.run_queues and not info.disabled else "not polled (use --queues)"
                try:
                    via = connection_description(info.connection or "", os.environ)
                except QueueTriggerError:
                    via = "no connection"
                lines.append(
                    f"  {info.name}: queueTrigger {info.queue!r} ({info.connection}: {via}), "
                    f"{running}{state}{problem}"
                )
            else:
                lines.append(f"  {info.name}: {info.trigger} (not run by devhost)")
        return "\n".join(lines)

    # -- timers --------------------------------------------------------------------------------

    def _start_timers(self) -> None:
        for timer in self._timers.values():
            if timer.info.disabled:
                continue
            if timer.schedule is None:
                raise ScheduleError(f"timer function {timer.info.name}: {timer.info.problem}")
        for timer in self._timers.values():
            if timer.info.disabled:
                continue
            thread = threading.Thread(
                target=self._timer_loop, args=(timer,), name=f"devhost-timer-{timer.info.name}", daemon=True
            )
            self._timer_threads.append(thread)
            thread.start()

    def _timer_loop(self, timer: _TimerFunction) -> None:
        schedule = timer.schedule
        assert schedule is not None
        if timer.run_on_startup:
            self._fire_logged(timer, reason="RunOnStartup")
        base = _utcnow()
        while not self._stopping.is_set():
            due = schedule.next_after(base)
            if self._stopping.wait(max(0.0, (due - _utcnow()).total_seconds())):
                return
            self._fire_logged(timer, reason=f"Timer fired at {due.isoformat()}", quiet_if_idle=True)
            # Occurrences missed while the function ran are skipped, as on the host.
            base = max(due, _utcnow())

    def _fire_logged(
        self, timer: _TimerFunction, *, reason: str, past_due: bool = False, quiet_if_idle: bool = False
    ) -> None:
        with contextlib.suppress(Exception):  # _fire logged the traceback already
            self._fire(timer, past_due=past_due, reason=reason, quiet_if_idle=quiet_if_idle)

    def _fire(
        self, timer: _TimerFunction, *, past_due: bool, reason: str, quiet_if_idle: bool = False
    ) -> None:
        """One run. With ``quiet_if_idle`` (scheduled runs) the Executing/Executed lines are INFO only
        when the function itself logged at INFO or above: a monitor that found nothing every 5 s
        must not fill the console."""
        name = timer.info.name
        with timer.lock:
            now = _utcnow()
            upcoming = timer.schedule.next_after(now) if timer.schedule else None
            status = {
                "Last": timer.last.isoformat() if timer.last else _EMPTY_TIME,
                "Next": upcoming.isoformat() if upcoming else _EMPTY_TIME,
                "LastUpdated": now.isoformat(),
            }
            request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
            started = time.perf_counter()
            run = _Run(f"Executing 'Functions.{name}' (Reason='{reason}')")
            if quiet_if_idle:
                log.debug("%s", run.executing)
            else:
                run.announce()
            token = _CURRENT_RUN.set(run)
            try:
                timer.invoker.invoke(request)
            except Exception:
                run.announce()
                self._log_failure(name, started)
                raise
            finally:
                _CURRENT_RUN.reset(token)
                timer.last = now
            log.log(
                logging.INFO if run.announced else logging.DEBUG,
                "Executed 'Functions.%s' (Succeeded, Duration=%.0fms)",
                name,
                (time.perf_counter() - started) * 1000,
            )

    def loggable(self, target: str) -> str:
        """A request target as log lines show it: the path only, the key and every ``code=`` value
        masked wherever they are (``/api/alerts&code=...`` is a path), printable, at most 200 chars."""
        text = target.split("?", 1)[0].split("#", 1)[0] or "/"
        for secret in {self.key, quote(self.key, safe="")}:
            text = text.replace(secret, "***")
        text = _CODE_PARAM_RE.sub(lambda m: f"code{m.group(1)}***", text)
        text = "".join(c if c.isprintable() else "?" for c in text)
        if len(text) > MAX_LOGGED_TARGET:
            text = f"{text[:MAX_LOGGED_TARGET]}…(+{len(text) - MAX_LOGGED_TARGET} chars)"
        return text

    def _masked_traceback(self) -> str:
        # Pre-formatted so the key can be masked even if user code put a URL in an exception.
        return traceback.format_exc().replace(self.key, "***").rstrip()

    def _log_failure(self, name: str, started: float) -> None:
        log.error(
            "Executed 'Functions.%s' (Failed, Duration=%.0fms)\n%s",
            name,
            (time.perf_counter() - started) * 1000,
            self._masked_traceback(),
        )

    # -- HTTP ----------------------------------------------------------------------------------

    def _authorized(self, headers: Mapping[str, str], params: Mapping[str, str]) -> bool:
        # As on the host: the x-functions-key header wins over the code query parameter.
        supplied = headers.get("x-functions-key")
        if supplied is None:
            supplied = params.get("code")
        if supplied is None:
            return False
        return hmac.compare_digest(supplied.encode("utf-8"), self._key_bytes)

    def _respond(
        self, method: str, target: str, header_pairs: list[tuple[str, str]], body: bytes
    ) -> tuple[EncodedResponse, str]:
        """Route one request; returns the answer and the function name (for the access log)."""
        parts = urlsplit(target)
        path = parts.path or "/"
        headers: dict[str, str] = {}
        for name, value in header_pairs:
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]},{value}" if lowered in headers else value
        params: dict[str, str] = {}
        canonical: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            key = canonical.setdefault(name.lower(), name)  # query keys are case-insensitive
            params[key] = f"{params[key]},{value}" if key in params else value
        lowered_params = {k.lower(): v for k, v in params.items()}

        if path.lower().startswith("/admin/") or path.lower() == "/admin":
            return self._admin(method, path, headers, lowered_params), "admin"

        found = self._routes.match(unquote(path), method)
        if isinstance(found, frozenset):
            if self.method_mismatch_status == 405:
                return EncodedResponse(405, [("Allow", ", ".join(sorted(found)))], b""), ""
            return EncodedResponse(404, [], b""), ""
        if found is None:
            return EncodedResponse(404, [], b""), ""
        index, route_params = found
        function = self._http[index]
        name = function.info.name
        if function.info.auth_level != "anonymous" and not self._authorized(headers, lowered_params):
            return EncodedResponse(401, [], b""), name
        host_header = headers.get("host") or f"{self._bind_host}:{self.port}"
        url = target if parts.scheme else f"http://{host_header}{target}"
        request = WorkerHttpRequest(
            method,
            url,
            headers=headers,
            params=params,
            route_params=route_params,
            body_type="bytes",
            body=body,
        )
        # The invocation id the function sees (func.Context) is also in the access line, so the
        # app's own log lines for this request can be found from it.
        invocation_id = str(uuid.uuid4())
        return self._invoke_http(function, request, invocation_id), f"{name} id={invocation_id}"

    def _invoke_http(
        self, function: _HttpFunction, request: WorkerHttpRequest, invocation_id: str
    ) -> EncodedResponse:
        started = time.perf_counter()
        try:
            response = function.invoker.invoke_http(request, invocation_id)
        except Exception:
            self._log_failure(function.info.name, started)
            return EncodedResponse(500, [], b"")
        problem = _validate_headers(response.headers)
        if problem is None and not 100 <= response.status <= 599:
            problem = f"invalid status code {response.status}"
        if problem is not None:
            log.error("Executed 'Functions.%s' (Failed): %s", function.info.name, problem)
            return EncodedResponse(500, [], b"")
        headers = [(n, v) for n, v in response.headers if n.lower() not in _HOP_BY_HOP]
        return EncodedResponse(response.status, headers, response.body)

    def _admin(
        self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str]
    ) -> EncodedResponse:
        """The few admin endpoints a developer needs: ping, status, run a non-HTTP function."""
        segments = [s for s in path.split("/") if s]
        lowered = [s.lower() for s in segments]
        if lowered == ["admin", "host", "ping"] and method in ("GET", "POST", "HEAD"):
            return EncodedResponse(200, [], b"")
        if not self._authorized(headers, params):
            return EncodedResponse(401, [], b"")
        if lowered == ["admin", "host", "status"] and method in ("GET", "HEAD"):
            body = b'{"state":"Running","version":"devhost"}'
            return EncodedResponse(200, [("Content-Type", "application/json; charset=utf-8")], body)
        if len(segments) == 3 and lowered[:2] == ["admin", "functions"]:
            if method != "POST":
                return EncodedResponse(405, [("Allow", "POST")], b"")
            timer = next((t for n, t in self._timers.items() if n.lower() == lowered[2]), None)
            if timer is None:
                return EncodedResponse(404, [], b"")
            self._fire_in_background(timer)
            return EncodedResponse(202, [], b"")
        return EncodedResponse(404, [], b"")

    def _fire_in_background(self, timer: _TimerFunction) -> None:
        def _run() -> None:
            try:
                self._fire_logged(
                    timer, reason="This function was programmatically called via the host APIs."
                )
            finally:
                with self._bg_lock:
                    self._background.discard(threading.current_thread())

        thread = threading.Thread(target=_run, name=f"devhost-admin-{timer.info.name}", daemon=True)
        with self._bg_lock:
            self._background.add(thread)
        thread.start()

    def _remove_path(self) -> None:
        if self._added_path:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(self.app_dir))
            self._added_path = False
