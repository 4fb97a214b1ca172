"""HTTP glue: the Functions Blueprint, JSON responses, and the guard that keeps 500s out."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable

import azure.functions as func

from capture.arm import ArmError
from capture.blobs import final_report, make_analyzer
from capture.monitor import Monitor
from capture.settings import SettingsError, get_settings
from capture.webhook import RETRY_AFTER_SECONDS, Answer, handle_alert

log = logging.getLogger(__name__)
# The SDK logs every request and response at INFO; one line per decision is ours to write.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
logging.getLogger("azure.identity").setLevel(logging.WARNING)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

try:  # validate the settings when the worker loads the app, so a mistake shows in the start-up log
    get_settings()
except SettingsError as _invalid:
    log.error("app settings are invalid, every request will say so until fixed: %s", _invalid)
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
        return json_response(Answer(500, {"status": "misconfigured", "error": {"message": str(exc)}}, {}))
    except Exception:
        log.exception("unhandled error")
        return json_response(Answer(500, {"status": "error", "error": {"message": "internal error"}}, {}))


@bp.route(route="alerts", methods=["POST"])
def alert_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Azure Monitor alert webhook: start packet captures for the VMs a fired alert names."""
    from capture.arm import get_arm

    def work() -> Answer:
        settings = get_settings()
        return handle_alert(req.get_body(), settings, get_arm(settings))

    return guarded(work)


def _arm_failure(exc: ArmError) -> Answer:
    status = 503 if exc.transient else 502
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.transient else {}
    return Answer(
        status,
        {
            "status": "unavailable" if exc.transient else "failed",
            "error": {"code": exc.code, "message": exc.message},
        },
        headers,
    )


@bp.route(route="captures", methods=["GET"])
def list_captures(req: func.HttpRequest) -> func.HttpResponse:
    """The captures this app started, with their live status, stop reason and storage path."""

    def work() -> Answer:
        monitor = _monitor()
        try:
            captures = [monitor.live(c).to_json() for c in monitor.our_captures()]
        except ArmError as exc:
            return _arm_failure(exc)
        return Answer(200, {"status": "ok", "count": len(captures), "captures": captures}, {})

    return guarded(work)


@bp.route(route="captures/{name}", methods=["GET"])
def get_capture(req: func.HttpRequest) -> func.HttpResponse:
    """One capture: live while it exists, then its final report (with findings) from storage."""

    def work() -> Answer:
        name = req.route_params.get("name", "")
        if not _CAPTURE_NAME.fullmatch(name):
            return Answer(
                400,
                {
                    "status": "rejected",
                    "error": {
                        "message": "a capture name has 1-80 letters, digits, '-', '_' or '.'",
                        "location": "name",
                    },
                },
                {},
            )
        monitor = _monitor()
        try:
            capture = monitor.find(name)
        except ArmError as exc:
            return _arm_failure(exc)
        if capture is not None:
            return Answer(200, {"status": "ok", "capture": monitor.live(capture).to_json()}, {})
        report = final_report(monitor.settings, name)
        if report is not None:
            return Answer(200, {"status": "ok", "capture": report}, {})
        return Answer(
            404,
            {
                "status": "not_found",
                "error": {
                    "message": f"no capture named {name} started by this app (a finished capture stays "
                    "visible here once its report is stored)",
                    "location": "name",
                },
            },
            {},
        )

    return guarded(work)


@bp.timer_trigger(
    arg_name="timer",
    schedule=os.environ.get("CAPTURE_MONITOR_SCHEDULE") or "0 * * * * *",
    run_on_startup=False,
)
def capture_monitor(timer: func.TimerRequest) -> None:
    """Follow captures to their end: notify, store findings, delete the finished resource."""
    result = _monitor().run()
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


def _monitor() -> Monitor:
    from capture.arm import get_arm

    settings = get_settings()
    arm = get_arm(settings)
    return Monitor(arm, settings, analyzer=make_analyzer(settings, arm))
