"""Fault injection rules: error statuses (with Retry-After), slow responses and dropped connections.

A rule matches on HTTP method and a regex searched in the request path (query excluded). Rules are tried in
the order they were added; the first rule that matches *and fires* applies (``times`` left, and the
seeded RNG roll against ``probability``). Everything is thread-safe.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

Endpoint = Literal["arm", "identity"]

# Default ARM bodies per status. 429 body: ARM's throttling error as users report it (docs/EMULATOR.md);
# 500: the live Network RP's generic failure ("InternalServerError" / "An error occurred.", docs/EMULATOR.md).
# 502/503/504: ARM-style, emulator-chosen wording (UNCONFIRMED).
_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    408: ("RequestTimeout", "The request timed out."),
    409: ("Conflict", "The request conflicts with the current state of the resource (injected fault)."),
    429: (
        "SubscriptionRequestsThrottled",
        "Number of requests for subscription exceeded the limit. Please try again after some time.",
    ),
    500: ("InternalServerError", "An error occurred."),
    502: ("BadGateway", "The gateway did not receive a response from the resource provider."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
    504: ("GatewayTimeout", "The gateway did not receive a response within the specified time period."),
}


@dataclass
class FaultRule:
    """One rule. Exactly what happens when it fires:

    * ``delay`` (seconds): sleep before answering (a *slow response*; use a value above the client's
      read timeout to provoke a timeout). Combined with nothing else, the request is then served normally.
    * ``drop``: close the connection without answering.
    * ``status``: answer this status with an ARM error body (``code``/``message`` or the defaults above) and
      ``Retry-After: retry_after`` when given (float seconds are allowed; the SDK parses floats).
    * ``after``: serve the request first (state changes happen), then replace the answer with the fault:
      "the service did it but the client never heard" (idempotency tests).
    """

    method: str | None = None
    path: str | None = None
    status: int | None = None
    retry_after: float | None = None
    times: int | None = None
    probability: float | None = None
    delay: float = 0.0
    drop: bool = False
    code: str | None = None
    message: str | None = None
    after: bool = False
    endpoint: Endpoint = "arm"
    hits: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status is None and not self.drop and self.delay <= 0:
            raise ValueError("a fault needs status=, drop=True or delay=")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("fault status must be 4xx or 5xx")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")
        self._regex = re.compile(self.path) if self.path else None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, endpoint: Endpoint, method: str, path: str) -> bool:
        if endpoint != self.endpoint or self.exhausted:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._regex is None or self._regex.search(path) is not None

    def error_body(self) -> dict[str, Any]:
        assert self.status is not None
        code, message = _DEFAULT_ERRORS.get(self.status, ("InjectedFault", "Injected fault."))
        return {"error": {"code": self.code or code, "message": self.message or message}}


class Faults:
    """The rule set of one emulator (``emu.faults``)."""

    def __init__(self, seed: int | None = 0) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def add(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        times: int | None = None,
        probability: float | None = None,
        delay: float = 0.0,
        drop: bool = False,
        code: str | None = None,
        message: str | None = None,
        after: bool = False,
        endpoint: Endpoint = "arm",
    ) -> FaultRule:
        rule = FaultRule(
            method=method,
            path=path,
            status=status,
            retry_after=retry_after,
            times=times,
            probability=probability,
            delay=delay,
            drop=drop,
            code=code,
            message=message,
            after=after,
            endpoint=endpoint,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_from_dict(self, spec: dict[str, Any]) -> FaultRule:
        """World-file form: the keyword names of :meth:`add`, camelCase accepted (``retryAfter``)."""
        aliases = {"retryAfter": "retry_after"}
        kwargs = {aliases.get(k, k): v for k, v in spec.items()}
        return self.add(**kwargs)

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng.seed(seed)

    def pick(self, endpoint: Endpoint, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request (its ``hits`` already counted), if any."""
        with self._lock:
            if not self._rules:
                return None
            for rule in self._rules:
                if not rule.matches(endpoint, method, path):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None
