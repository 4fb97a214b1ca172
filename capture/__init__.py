"""Alert-triggered Network Watcher packet capture: the deployed domain code.

The names below are the package's public face (what function_app, tests, benchmarks and the local host
may use); everything else is internal and may change. `tests/test_public_api.py` keeps `__all__` and
the exports in step.
"""

from capture.arm import ArmError, CaptureStatus
from capture.context import AppContext, app_context, reset
from capture.decisions import Outcome, TargetResult, outcome_for
from capture.errors import InputError
from capture.payloads import AlertEvent, parse_alert
from capture.settings import CaptureOverrides, Settings, SettingsError, load_settings, setting_names
from capture.views import AlertRef, Analysis, CaptureView, Links

__all__ = [
    "AlertEvent",
    "AlertRef",
    "Analysis",
    "AppContext",
    "ArmError",
    "CaptureOverrides",
    "CaptureStatus",
    "CaptureView",
    "InputError",
    "Links",
    "Outcome",
    "Settings",
    "SettingsError",
    "TargetResult",
    "app_context",
    "load_settings",
    "outcome_for",
    "parse_alert",
    "reset",
    "setting_names",
]
