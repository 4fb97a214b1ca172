"""Loading: host.json, local.settings.json, the single FunctionApp, get_functions() once, keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devhost import AppLoadError, LocalHost
from tests.devhost.devhost_support import MINIMAL_APP, SAMPLE_APP, call, forget_env_after_test, write_app


def test_default_route_prefix_is_api(tmp_path: Path) -> None:
    with LocalHost(write_app(tmp_path, MINIMAL_APP), key="k", load_settings=False) as host:
        assert host.route_prefix == "api"
        assert call(host.url, "/api/health").body == b"ok"


def test_empty_route_prefix_serves_at_the_root(tmp_path: Path) -> None:
    app = write_app(
        tmp_path, MINIMAL_APP, host_json={"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}
    )
    with LocalHost(app, key="k", load_settings=False) as host:
        assert call(host.url, "/health").body == b"ok"
        assert call(host.url, "/api/health").status == 404


def test_local_settings_values_fill_the_environment_without_overriding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget_env_after_test(monkeypatch, "DEVHOST_T_NEW", "DEVHOST_T_SET", "DEVHOST_T_FLAG", "FUNCTIONS_KEY")
    monkeypatch.setenv("DEVHOST_T_SET", "from-env")
    settings = {
        "IsEncrypted": False,
        "Values": {
            "DEVHOST_T_NEW": "from-file",
            "DEVHOST_T_SET": "from-file",
            "DEVHOST_T_FLAG": True,
            "FUNCTIONS_KEY": "key-from-settings",
        },
    }
    app = write_app(tmp_path, MINIMAL_APP, local_settings=settings)
    with LocalHost(app) as host:
        assert os.environ["DEVHOST_T_NEW"] == "from-file"
        assert os.environ["DEVHOST_T_SET"] == "from-env"
        assert os.environ["DEVHOST_T_FLAG"] == "true"
        assert (host.key, host.key_source) == ("key-from-settings", "FUNCTIONS_KEY")
        assert "DEVHOST_T_SET" not in host.applied_settings


def test_local_settings_can_be_skipped_and_encrypted_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget_env_after_test(monkeypatch, "DEVHOST_T_SKIPPED")
    app = write_app(tmp_path, MINIMAL_APP, local_settings={"Values": {"DEVHOST_T_SKIPPED": "x"}})
    LocalHost(app, key="k", load_settings=False).stop()
    assert "DEVHOST_T_SKIPPED" not in os.environ
    write_app(tmp_path, MINIMAL_APP, local_settings={"IsEncrypted": True, "Values": {}})
    with pytest.raises(AppLoadError, match="encrypted"):
        LocalHost(app)


def test_key_argument_then_environment_then_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path, MINIMAL_APP)
    monkeypatch.setenv("FUNCTIONS_KEY", "env-key")
    assert LocalHost(app, key="arg-key").key == "arg-key"
    assert LocalHost(app).key == "env-key"
    monkeypatch.delenv("FUNCTIONS_KEY")
    first, second = LocalHost(app), LocalHost(app)
    assert first.key_source == "generated"
    assert len(first.key) >= 32
    assert first.key != second.key


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (MINIMAL_APP + "\nsecond = func.FunctionApp()\n", "More than one"),
        (MINIMAL_APP + "\nalias = app\n", "More than one"),
        ("import azure.functions as func\nbp = func.Blueprint()\n", "Could not find top level function app"),
    ],
)
def test_exactly_one_function_app_like_the_worker(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(AppLoadError, match=message):
        LocalHost(write_app(tmp_path, source), key="k")


def test_missing_script_and_bad_host_json(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError, match=r"function_app\.py not found"):
        LocalHost(tmp_path, key="k")
    (tmp_path / "function_app.py").write_text(MINIMAL_APP)
    (tmp_path / "host.json").write_text("{nope")
    with pytest.raises(AppLoadError, match=r"host\.json"):
        LocalHost(tmp_path, key="k")


def test_python_script_file_name_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_SCRIPT_FILE_NAME", "main_app.py")
    with LocalHost(write_app(tmp_path, MINIMAL_APP, script="main_app.py"), key="k") as host:
        assert call(host.url, "/api/health").body == b"ok"


def test_each_host_indexes_a_fresh_module_and_leaves_imports_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # get_functions() is not idempotent: a second host on the same app must not reuse the app object.
    monkeypatch.setenv("SAMPLE_TICK_SCHEDULE", "0 0 0 1 1 *")
    before = sys.modules.get("function_app")
    path_before = list(sys.path)
    with LocalHost(SAMPLE_APP, key="k") as one, LocalHost(SAMPLE_APP, key="k") as two:
        assert one.loaded.module is not two.loaded.module
        assert call(one.url, "/sample/health").status == call(two.url, "/sample/health").status == 200
    assert sys.modules.get("function_app") is before
    assert sys.path == path_before


def test_routes_conflicting_with_builtin_admin_routes_are_refused(tmp_path: Path) -> None:
    source = MINIMAL_APP.replace('route="health"', 'route="admin/thing"')
    app = write_app(tmp_path, source, host_json={"extensions": {"http": {"routePrefix": ""}}})
    with pytest.raises(AppLoadError, match="built-in routes"):
        LocalHost(app, key="k")


@pytest.mark.parametrize("route", ["items/{id:int}", "items/{id?}", "files/{*path}", "a/{x}.{y}", "a/{"])
def test_route_syntax_devhost_does_not_serve_is_refused_at_load(tmp_path: Path, route: str) -> None:
    source = MINIMAL_APP.replace('route="health"', f"route={route!r}")
    with pytest.raises(AppLoadError, match="literal segments and"):
        LocalHost(write_app(tmp_path, source), key="k")


def test_disabled_function_is_not_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobs.health.Disabled", "true")
    with LocalHost(write_app(tmp_path, MINIMAL_APP), key="k") as host:
        assert call(host.url, "/api/health").status == 404
        assert host.functions[0].disabled


def test_method_mismatch_can_answer_404_like_azure(tmp_path: Path) -> None:
    source = MINIMAL_APP.replace('route="health"', 'route="health", methods=["POST"]')
    with LocalHost(write_app(tmp_path, source), key="k", method_mismatch_status=404) as host:
        assert call(host.url, "/api/health").status == 404
        assert call(host.url, "/api/health", "POST", body=b"").status == 200


def test_import_error_in_the_app_propagates_and_restores_sys_path(tmp_path: Path) -> None:
    path_before = list(sys.path)
    with pytest.raises(ZeroDivisionError):
        LocalHost(write_app(tmp_path, MINIMAL_APP + "\n1 / 0\n"), key="k")
    assert sys.path == path_before


def test_a_host_starts_once(tmp_path: Path) -> None:
    host = LocalHost(write_app(tmp_path, MINIMAL_APP), key="k")
    with host, pytest.raises(RuntimeError):
        host.start()
    with pytest.raises(RuntimeError):
        host.start()
    host.stop()  # idempotent


def test_port_in_use_fails_start_and_cleans_up(tmp_path: Path) -> None:
    app = write_app(tmp_path, MINIMAL_APP)
    path_before = list(sys.path)
    with LocalHost(app, key="k") as first:
        second = LocalHost(app, key="k", port=first.port)
        with pytest.raises(OSError, match="in use"), second:
            pass
    assert sys.path == path_before
