"""Calling user functions the way the Python worker does, and encoding HTTP results like it.

* Arguments: the trigger parameter, a ``context`` parameter (a :class:`azure.functions.Context`),
  and a throw-away :class:`azure.functions.Out` for each output binding (e.g. an HTTP output
  binding named other than ``$return``). Other input bindings cannot be emulated: such a function
  fails when invoked, with a clear log line.
* Coroutines run on one shared asyncio event loop (a background thread), as the worker runs every
  ``async def`` function on its single loop; plain functions run in the calling (request) thread.
* HTTP results go through the worker's own ``HttpResponseConverter.encode``: a ``str`` becomes a
  200 ``text/plain; charset=utf-8`` answer, an ``HttpResponse`` keeps its status and headers and
  gets ``Content-Type`` from ``mimetype``/``charset`` exactly as on Azure; anything else (``None``,
  ``dict``, ``bytes``) is an invocation error, i.e. a 500.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, cast

import azure.functions as func
from azure.functions import _abc as azf_abc
from azure.functions.decorators.function_app import Function
from azure.functions.http import HttpResponseConverter

__all__ = [
    "AsyncRunner",
    "EncodedResponse",
    "InvocationContext",
    "InvocationError",
    "Invoker",
    "encode_http_result",
]

_RETURN = "$return"
_DIRECTION_IN = 0


class InvocationError(RuntimeError):
    """The function cannot be called or its result cannot be used (a 500 on the host)."""


class AsyncRunner:
    """One event loop in a daemon thread, shared by every ``async def`` invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def _run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=_run, name="devhost-asyncio", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run ``awaitable`` to completion on the shared loop and return its result (or raise)."""

        context = contextvars.copy_context()

        async def _await() -> Any:
            for variable, value in context.items():  # the caller's context vars, as asyncio.to_thread does
                variable.set(value)
            return await awaitable

        loop = self._ensure_loop()
        if self._thread is threading.current_thread():
            raise InvocationError("cannot block the host's event loop waiting for itself")
        return asyncio.run_coroutine_threadsafe(_await(), loop).result()

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def _shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()
            loop.stop()

        asyncio.run_coroutine_threadsafe(_shutdown(), loop)
        thread.join()
        loop.close()


class _Out(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _TraceContext(azf_abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RpcException(azf_abc.RpcException):
    @property
    def source(self) -> str:
        return ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return ""


class _RetryContext(azf_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> azf_abc.RpcException:
        return _RpcException()


class InvocationContext(func.Context):
    """`func.Context` as the worker passes it to a function that asks for one."""

    _local = threading.local()

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> azf_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> azf_abc.RetryContext:
        return _RetryContext()


@dataclass(frozen=True)
class EncodedResponse:
    """An HTTP answer ready to write: status, header pairs (duplicates allowed) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def encode_http_result(result: Any) -> EncodedResponse:
    """Encode a function's HTTP result exactly as the worker's ``HttpResponseConverter`` does."""
    if not isinstance(result, str | azf_abc.HttpResponse):
        raise InvocationError(
            f'unable to encode outgoing TypedData: unsupported type "http" for Python type '
            f'"{type(result).__name__}"'
        )
    datum = HttpResponseConverter.encode(result, expected_type=None)
    if datum.type == "string":
        text = cast(str, datum.value)
        return EncodedResponse(200, [("Content-Type", "text/plain; charset=utf-8")], text.encode("utf-8"))
    value = cast(dict[str, Any], datum.value)
    status = int(value["status_code"].value)
    headers = [(str(name), str(h.value)) for name, h in value["headers"].items()]
    cookies = cast("list[SimpleCookie] | None", value.get("cookies"))
    for cookie in cookies or []:
        for morsel in cookie.values():
            headers.append(("Set-Cookie", morsel.OutputString()))
    body = value["body"].value
    return EncodedResponse(status, headers, bytes(body) if body else b"")


class Invoker:
    """Calls one indexed function with the arguments its signature asks for."""

    def __init__(self, function: Function, app_dir: Path, runner: AsyncRunner) -> None:
        trigger = function.get_trigger()
        if trigger is None:  # get_functions() already refuses this
            raise InvocationError(f"function {function.get_function_name()} has no trigger")
        self.function = function
        self.name = str(function.get_function_name())
        self.trigger_name = str(trigger.name)
        self._user: Callable[..., Any] = function.get_user_function()
        self._app_dir = str(app_dir)
        self._runner = runner
        self.has_return = False
        self.http_out_name: str | None = None
        outputs: set[str] = set()
        inputs: dict[str, str] = {}
        for binding in function.get_bindings():
            name = str(binding.name)
            if binding is trigger:
                continue
            if name == _RETURN:
                self.has_return = True
            elif binding.direction == _DIRECTION_IN:
                inputs[name] = str(binding.type)
            else:
                outputs.add(name)
                if binding.type == "http":
                    self.http_out_name = name
        self._outputs = outputs
        self.problem: str | None = None
        self._params: list[str] = []
        for param in inspect.signature(self._user).parameters.values():
            if param.name in (self.trigger_name, "context") or param.name in outputs:
                self._params.append(param.name)
            elif param.name in inputs:
                self.problem = (
                    f"devhost cannot supply the {inputs[param.name]!r} input binding "
                    f"{param.name!r} of function {self.name}"
                )
            elif param.default is inspect.Parameter.empty and param.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                self.problem = f"function {self.name}: parameter {param.name!r} matches no binding"

    def invoke(self, trigger_value: Any, invocation_id: str | None = None) -> tuple[Any, dict[str, Any]]:
        """Call the function; returns its result and the values set on its output bindings.

        `invocation_id` is what `func.Context.invocation_id` reports (a new UUID when not given).
        """
        if self.problem:
            raise InvocationError(self.problem)
        outs = {name: _Out() for name in self._outputs}
        kwargs: dict[str, Any] = {}
        for name in self._params:
            if name == self.trigger_name:
                kwargs[name] = trigger_value
            elif name in outs:
                kwargs[name] = outs[name]
            else:
                kwargs[name] = InvocationContext(invocation_id or str(uuid.uuid4()), self.name, self._app_dir)
        result = self._user(**kwargs)
        if inspect.isawaitable(result):
            result = self._runner.run(result)
        if not self.has_return and result is not None:
            raise InvocationError(
                f"function {self.name!r} without a $return binding returned a non-None value"
            )
        return result, {name: out.get() for name, out in outs.items()}

    def invoke_http(self, request: func.HttpRequest, invocation_id: str | None = None) -> EncodedResponse:
        result, outputs = self.invoke(request, invocation_id)
        if self.http_out_name is not None:
            result = outputs[self.http_out_name]
        return encode_http_result(result)
