"""Sample app exercising what devhost must emulate: routes, auth levels, responses, async, timers.

Module-level state (events, call lists, the rendezvous barrier) lets tests observe invocations
without sleeping. A fresh module object is executed for each LocalHost, so state is per host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call, unused-ignore]

TIMER_CALLS: list[tuple[str, func.TimerRequest]] = []
TIMER_FIRED = threading.Event()
ASYNC_TIMER_FIRED = threading.Event()
BUSY_TIMER_FIRED = threading.Event()
QUEUE_CALLS: list[tuple[float, func.QueueMessage]] = []  # (monotonic time, message) per invocation
QUEUE_GATE = threading.Semaphore(0)  # "gate" messages wait for a release by the test
QUEUE_LOCK = threading.Lock()
QUEUE_RUNNING = [0]  # invocations in progress
RENDEZVOUS = threading.Barrier(1)


def as_json(value: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status, mimetype="application/json")


def describe(req: func.HttpRequest) -> dict[str, object]:
    return {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route": dict(req.route_params),
        "headers": dict(req.headers),
        "body": req.get_body().decode("utf-8", "replace"),
    }


# -- a blueprint, registered like the real app's -------------------------------------------------


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> str:
    return "ok"


@bp.route(route="alerts", methods=["POST"])
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = req.get_json()
    except ValueError:
        return as_json({"status": "rejected", "error": "body is not JSON"}, 400)
    return as_json({"status": "accepted", "received": body}, 202)


app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)


# -- routing ---------------------------------------------------------------------------------------


@app.route(route="echo/{id}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return as_json(describe(req))


@app.route(route="echo/{id}/{name}", methods=["GET", "POST"])
def echo_named(req: func.HttpRequest) -> func.HttpResponse:
    return as_json(describe(req))


@app.route(route="items/special", methods=["GET"])
def item_special(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"function": "item_special"})


@app.route(route="items/{id}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"function": "item_by_id", "route": dict(req.route_params)})


@app.route(route="things/{id}", methods=["GET"])
def thing_get(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"function": "thing_get"})


@app.route(route="things/{id}", methods=["DELETE"])
def thing_delete(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"function": "thing_delete"})


@app.function_name("renamed")
@app.route(methods=["GET"])
def default_route_is_the_function_name(req: func.HttpRequest) -> str:
    return "renamed"


@app.route(route="anymethod")
def any_method(req: func.HttpRequest) -> str:
    return str(req.method)


@app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> str:
    return "admin"


# -- responses -------------------------------------------------------------------------------------


@app.route(route="respond/json", auth_level=func.AuthLevel.ANONYMOUS)
def respond_json(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        '{"a": 1}', status_code=201, mimetype="application/json", headers={"X-Extra": "1"}
    )


@app.route(route="respond/text", auth_level=func.AuthLevel.ANONYMOUS)
def respond_text(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("héllo")


@app.route(route="respond/latin1", auth_level=func.AuthLevel.ANONYMOUS)
def respond_latin1(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("héllo", mimetype="text/html", charset="iso-8859-1")


@app.route(route="respond/explicit-type", auth_level=func.AuthLevel.ANONYMOUS)
def respond_explicit_type(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        b"{}", headers={"Content-Type": "application/problem+json"}, mimetype="application/json"
    )


@app.route(route="respond/empty", auth_level=func.AuthLevel.ANONYMOUS)
def respond_empty(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.route(route="respond/cookies", auth_level=func.AuthLevel.ANONYMOUS)
def respond_cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("cookies")
    response.headers.add("Set-Cookie", "a=1; Path=/")
    response.headers.add("Set-Cookie", "b=2; HttpOnly")
    return response


@app.route(route="respond/str", auth_level=func.AuthLevel.ANONYMOUS)
def respond_str(req: func.HttpRequest) -> str:
    return "plain ✓"


@app.route(route="respond/dict", auth_level=func.AuthLevel.ANONYMOUS)
def respond_dict(req: func.HttpRequest) -> func.HttpResponse:
    return {"not": "a response"}  # type: ignore[return-value]  # deliberately wrong: the worker fails it


@app.route(route="respond/bad-header", auth_level=func.AuthLevel.ANONYMOUS)
def respond_bad_header(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("x", headers={"X-Mark": "✓"})  # Kestrel refuses non-ASCII header values


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError(f"secret internal detail from {req.url}")


@app.route(route="async/{value}", auth_level=func.AuthLevel.ANONYMOUS)
async def async_echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    return as_json({"value": req.route_params["value"], "loop": id(loop)})


@app.route(route="context", auth_level=func.AuthLevel.ANONYMOUS)
def with_context(req: func.HttpRequest, context: func.Context) -> str:
    return f"{context.function_name} {len(context.invocation_id)}"


@app.route(route="out-binding", auth_level=func.AuthLevel.ANONYMOUS, binding_arg_name="res")
def out_binding(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    res.set(func.HttpResponse("via Out", status_code=202))


@app.route(route="rendezvous", auth_level=func.AuthLevel.ANONYMOUS)
def rendezvous(req: func.HttpRequest) -> str:
    # Returns only once RENDEZVOUS.parties requests are inside the function at the same time
    # (BrokenBarrierError, i.e. a 500, if they are not all served in parallel within 20 s).
    RENDEZVOUS.wait(timeout=20)
    return "met"


# -- timers ----------------------------------------------------------------------------------------


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_TICK_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    TIMER_CALLS.append(("tick", timer))
    TIMER_FIRED.set()


@app.timer_trigger(arg_name="timer", schedule="*/1 * * * * *")
async def async_tick(timer: func.TimerRequest) -> None:
    await asyncio.sleep(0)
    TIMER_CALLS.append(("async_tick", timer))
    ASYNC_TIMER_FIRED.set()


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
def failing_timer(timer: func.TimerRequest) -> None:
    raise ValueError("timer failure")


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
def busy_tick(timer: func.TimerRequest) -> None:
    logging.getLogger("sample.busy").info("busy_tick did some work")
    BUSY_TIMER_FIRED.set()


# -- queues ----------------------------------------------------------------------------------------


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="SampleQueue")
def work(msg: func.QueueMessage) -> None:
    """Does what the message says: ok, fail, fail-once, gate (wait for the test), rendezvous (wait
    until ``parties`` messages run at once, in any process), stall-first (hang on the first dequeue,
    for a test to kill the process). With a ``dir``, a finished run writes ``done-<id>`` there
    holding this process's id and the dequeue count."""
    order = msg.get_json()
    with QUEUE_LOCK:
        QUEUE_CALLS.append((time.monotonic(), msg))
        QUEUE_RUNNING[0] += 1
    try:
        action = order["action"]
        if action == "fail" or (action == "fail-once" and msg.dequeue_count == 1):
            raise RuntimeError(f"{action} as asked (dequeue {msg.dequeue_count})")
        if action == "gate" and not QUEUE_GATE.acquire(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if action == "rendezvous":
            folder = Path(order["dir"])
            (folder / f"started-{msg.id}").touch()
            deadline = time.monotonic() + 30
            while len(list(folder.glob("started-*"))) < order["parties"]:
                if time.monotonic() > deadline:
                    raise TimeoutError("the other parties never came")
                threading.Event().wait(0.02)  # polling another process's files, with a deadline
        if action == "stall-first" and msg.dequeue_count == 1:
            (Path(order["dir"]) / f"stalled-{msg.id}").touch()
            threading.Event().wait(60)  # the test kills this process meanwhile
            raise TimeoutError("nobody killed the process")
        if "dir" in order:
            # Written whole, then renamed: a test that sees done-<id> exist reads all of it.
            partial = Path(order["dir"]) / f"partial-{msg.id}"
            partial.write_text(f"{os.getpid()} {msg.dequeue_count}")
            os.replace(partial, Path(order["dir"]) / f"done-{msg.id}")
    finally:
        with QUEUE_LOCK:
            QUEUE_RUNNING[0] -= 1
