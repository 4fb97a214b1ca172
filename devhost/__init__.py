"""devhost: a local Azure Functions host for v2-model Python apps (dev tool, not deployed).

Serves the HTTP functions of ``function_app.py`` the way the Functions host does (routePrefix,
route templates, methods, function keys, response mapping) and runs its timer and queue functions.

    from devhost import LocalHost

    with LocalHost(".", key="secret") as host:      # port 0: a free port
        print(host.url, host.function_url("list_captures"))
        host.trigger_timer("capture_monitor")

Command line: ``python -m devhost --help``. See devhost/README.md.
"""

from devhost.host import FunctionInfo, LocalHost
from devhost.loader import AppLoadError
from devhost.queues import QueueOptions, QueueTriggerError
from devhost.routes import RouteTemplateError
from devhost.schedule import CronSchedule, ScheduleError, parse_schedule

__all__ = [
    "AppLoadError",
    "CronSchedule",
    "FunctionInfo",
    "LocalHost",
    "QueueOptions",
    "QueueTriggerError",
    "RouteTemplateError",
    "ScheduleError",
    "parse_schedule",
]
