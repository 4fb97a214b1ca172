"""HTTP glue: the Functions Blueprint, JSON responses, and the guard that keeps 500s out."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import azure.functions as func

from capture.arm import ArmError
from capture.context import AppContext, app_context
from capture.errors import InputError
from capture.settings import DEFAULT_MONITOR_SCHEDULE, SettingsError
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
            return Answer(200, {"status": "ok", "capture": view.to_json()})
        message = (
            f"no capture named {name} started by this app (a finished capture stays visible here once "
            "its report is stored)"
        )
        return Answer(404, {"status": "not_found", "error": {"message": message, "location": "name"}})

    return guarded(work)


def run_recorder(ctx: AppContext) -> None:
    """One flight-recorder pass (after the monitor's), with its one log line."""
    if not ctx.recorder.enabled:
        return
    try:
        subscriptions = ctx.monitor.subscriptions()
    except ArmError as exc:
        log.warning(json.dumps({"event": "recorder_run", "error": exc.code}))
        return
    run = ctx.recorder.run(subscriptions)
    busy = run.armed or run.replaced or run.disarmed or run.reported or run.problems or run.errors
    log.log(
        logging.INFO if busy else logging.DEBUG,
        json.dumps(
            {
                "event": "recorder_run",
                "armed": run.armed,
                "replaced": run.replaced,
                "disarmed": run.disarmed,
                "postStopped": run.post_stopped,
                "reported": [r.name for r in run.reported],
                "problems": len(run.problems),
                "errors": run.errors[:5],
                "armCalls": run.arm_calls,
                "skipped": run.skipped,
            }
        ),
    )


@bp.timer_trigger(arg_name="timer", schedule=_monitor_schedule(), run_on_startup=False)
def capture_monitor(timer: func.TimerRequest) -> None:
    """Follow captures to their end: notify, store findings, delete the finished resource; keep the
    flight recorder's rings armed, replaced, followed through and re-armed."""
    ctx = app_context()
    result = ctx.monitor.run()
    run_recorder(ctx)
    busy = result.reported or result.undelivered or result.errors
    log.log(
        logging.INFO if busy else logging.DEBUG,
        json.dumps(
            {
                "event": "monitor_run",
                "reported": len(result.reported),
                "open": result.still_open,
                "undelivered": len(result.undelivered),
                "errors": len(result.errors),
                "armCalls": result.arm_calls,
                "skipped": result.skipped,
            }
        ),
    )
