"""HTTP glue: the Functions Blueprint, JSON responses, and the guard that keeps 500s out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import azure.functions as func

from capture.settings import SettingsError, get_settings
from capture.webhook import Answer, handle_alert

log = logging.getLogger(__name__)
# The SDK logs every request and response at INFO; one line per decision is ours to write.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
logging.getLogger("azure.identity").setLevel(logging.WARNING)

bp = func.Blueprint()


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

