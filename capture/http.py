"""HTTP glue: the Functions Blueprint, JSON responses, and the guard that keeps 500s out."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import azure.functions as func

from capture.arm import ArmError
from capture.context import app_context
from capture.errors import InputError
from capture.monitor import ReportFailed
from capture.queueing import parse_request
from capture.recorder import RecorderRun
from capture.settings import DEFAULT_MONITOR_SCHEDULE, DEFAULT_QUEUE_NAME, SettingsError
from capture.webhook import Answer, arm_failure, handle_alert, rejected

__all__ = ["bp"]

log = logging.getLogger(__name__)
# The SDK logs every request and response at INFO; one line per decision is ours to write.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
logging.getLogger("azure.identity").setLevel(logging.WARNING)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _monitor_schedule() -> str:
    """CAPTURE_MONITOR_SCHEDULE, read with the other settings when the worker indexes the app.

    Validating the settings here also puts a configuration mistake in the start-up log.
    """
    try:
        return app_context().settings.monitor_schedule
    except SettingsError as exc:
        log.error("app settings are invalid, every request will say so until fixed: %s", exc)
        return DEFAULT_MONITOR_SCHEDULE


def _queue_name() -> str:
    """CAPTURE_QUEUE_NAME, read when the worker indexes the app (as the schedule is)."""
    try:
        return app_context().settings.queue_name
    except SettingsError:
        return DEFAULT_QUEUE_NAME


# host.json extensions.queues.maxDequeueCount: how often a message was tried before it was poisoned.
MAX_DEQUEUE_COUNT = 5
QUEUE_CONNECTION = "CaptureQueue"
_QUEUE = _queue_name()

_CAPTURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def json_response(answer: Answer) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(answer.body, default=str),
        status_code=answer.status_code,
        headers=answer.headers,
        mimetype="application/json",
    )


def guarded(work: Callable[[], Answer]) -> func.HttpResponse:
    """Run a handler; configuration and unexpected errors still answer JSON, without internals."""
    try:
        return json_response(work())
    except SettingsError as exc:
        log.error("app settings are invalid: %s", exc)
        return json_response(Answer(500, {"status": "misconfigured", "error": {"message": str(exc)}}))
    except Exception:
        log.exception("unhandled error")
        return json_response(Answer(500, {"status": "error", "error": {"message": "internal error"}}))


@bp.route(route="alerts", methods=["POST"])
def alert_webhook(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Azure Monitor alert webhook: start packet captures for the VMs a fired alert names.

    The invocation id (also in the host's own log lines for this request) is every log line's requestId.
    """
    request_id = context.invocation_id
    return guarded(
        lambda: handle_alert(req.get_body(), app_context(), headers=dict(req.headers), request_id=request_id)
    )


@bp.route(route="captures", methods=["GET"])
def list_captures(req: func.HttpRequest) -> func.HttpResponse:
    """The captures this app started, with their live status, stop reason and storage path."""

    def work() -> Answer:
        monitor = app_context().monitor
        try:
            captures = [monitor.live(c).to_json() for c in monitor.our_captures()]
        except ArmError as exc:
            return arm_failure(exc)
        return Answer(200, {"status": "ok", "count": len(captures), "captures": captures})

    return guarded(work)


@bp.route(route="captures/{name}", methods=["GET"])
def get_capture(req: func.HttpRequest) -> func.HttpResponse:
    """One capture, in one shape: live while the resource exists, then its stored final report."""

    def work() -> Answer:
        name = req.route_params.get("name", "")
        if not _CAPTURE_NAME.fullmatch(name):
            return rejected(InputError("a capture name has 1-80 letters, digits, '-', '_' or '.'", "name"))
        ctx = app_context()
        try:
            capture = ctx.monitor.find(name)
        except ArmError as exc:
            return arm_failure(exc)
        view = ctx.monitor.live(capture) if capture is not None else ctx.blobs.final_report(name)
        if view is not None:
            ctx.blobs.add_links(view)  # fresh on every read: links are never stored
            return Answer(200, {"status": "ok", "capture": view.to_json()})
        message = (
            f"no capture named {name} started by this app (a finished capture stays visible here once "
            "its report is stored)"
        )
        return Answer(404, {"status": "not_found", "error": {"message": message, "location": "name"}})

    return guarded(work)


def _log_recorder(run: RecorderRun | None) -> None:
    """The flight recorder's part of a scheduler run, in one log line."""
    if run is None or (run.skipped and not run.errors):
        return
    busy = run.armed or run.replaced or run.disarmed or run.queued or run.problems or run.errors
    log.log(
        logging.INFO if busy else logging.DEBUG,
        json.dumps(
            {
                "event": "recorder_run",
                "armed": run.armed,
                "replaced": run.replaced,
                "disarmed": run.disarmed,
                "postStopped": run.post_stopped,
                "queued": run.queued,
                "problems": len(run.problems),
                "errors": run.errors[:5],
                "armCalls": run.arm_calls,
            }
        ),
    )


@bp.timer_trigger(arg_name="timer", schedule=_monitor_schedule(), run_on_startup=False)
def capture_monitor(timer: func.TimerRequest) -> None:
    """Schedule, not work: queue one message per capture that has ended (status asked only when due),
    and keep the flight recorder's rings armed, replaced and re-armed (a frozen timeline is queued too)."""
    result = app_context().monitor.schedule()
    _log_recorder(result.recorder)
    busy = result.queued or result.errors
    log.log(
        logging.INFO if busy else logging.DEBUG,
        json.dumps(
            {
                "event": "monitor_run",
                "queued": len(result.queued),
                "alreadyQueued": len(result.already_queued),
                "checked": result.checked,
                "open": result.still_open,
                "errors": len(result.errors),
                "armCalls": result.arm_calls,
                "skipped": result.skipped,
            }
        ),
    )


@bp.queue_trigger(arg_name="msg", queue_name=_QUEUE, connection=QUEUE_CONNECTION)
def capture_report(msg: func.QueueMessage) -> None:
    """One finished capture: analyse, store, notify, delete. Raising makes the host retry the message."""
    try:
        request = parse_request(msg.get_body())
    except InputError as exc:
        log.error(json.dumps({"event": "report_message_dropped", "messageId": msg.id, "reason": str(exc)}))
        return
    try:
        app_context().monitor.report(request)
    except ReportFailed as exc:
        log.warning(
            json.dumps(
                {
                    "event": "capture_report_retry",
                    "capture": request.capture,
                    "dequeueCount": msg.dequeue_count,
                    "reason": str(exc),
                }
            )
        )
        raise


@bp.queue_trigger(arg_name="msg", queue_name=f"{_QUEUE}-poison", connection=QUEUE_CONNECTION)
def capture_report_poison(msg: func.QueueMessage) -> None:
    """A capture whose report kept failing: report it as failed (with the reason) and keep it."""
    try:
        request = parse_request(msg.get_body())
    except InputError as exc:
        log.error(json.dumps({"event": "poison_message_dropped", "messageId": msg.id, "reason": str(exc)}))
        return
    app_context().monitor.report_poisoned(request, MAX_DEQUEUE_COUNT)
