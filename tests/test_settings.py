"""Settings are validated once with messages that name the setting; overrides never exceed maxima."""

import re
from pathlib import Path

import pytest

from capture.errors import InputError
from capture.settings import CaptureOverrides, Settings, SettingsError, load_settings, setting_names

STORAGE = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-capture/providers/Microsoft.Storage/storageAccounts/stcaptures"


def env(**values: str) -> dict[str, str]:
    return {"CAPTURE_STORAGE_ACCOUNT_ID": STORAGE, **values}


def overrides(settings: Settings, values: dict[str, object]) -> CaptureOverrides:
    """An alert's overrides, validated as intake does: against the configured maxima."""
    return CaptureOverrides.parse(values, "capture", settings.override_limits)


@pytest.fixture
def settings_from_env(monkeypatch):
    """Settings read from exactly these environment variables (none of the developer's own)."""

    def load(values: dict[str, str]) -> Settings:
        for name in setting_names():
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return load


def test_defaults_follow_the_documented_table(settings_from_env):
    settings = settings_from_env(env())
    assert settings.time_limit_seconds == 60
    assert settings.max_sessions == 10
    assert settings.bytes_per_session == 1073741824
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.storage_account_name == "stcaptures"
    assert settings.notify_format == "json"
    assert (settings.queue_name, settings.queue_service_uri) == ("capture-reports", None)
    assert (settings.check_max_interval_seconds, settings.requeue_after_seconds) == (600, 3600)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"CAPTURE_TIME_LIMIT_SECONDS": "0"}, "CAPTURE_TIME_LIMIT_SECONDS"),
        ({"CAPTURE_TIME_LIMIT_SECONDS": "18001"}, "CAPTURE_TIME_LIMIT_SECONDS"),
        ({"CAPTURE_TIME_LIMIT_SECONDS": "sixty"}, "CAPTURE_TIME_LIMIT_SECONDS"),
        ({"CAPTURE_MAX_SESSIONS": "0"}, "CAPTURE_MAX_SESSIONS"),
        ({"CAPTURE_FILTERS": "[{"}, "CAPTURE_FILTERS"),
        ({"CAPTURE_FILTERS": '[{"protocol": "ICMP"}]'}, "CAPTURE_FILTERS[0]"),
        ({"CAPTURE_FILTERS": '[{"localPort": "99999"}]'}, "out of range"),
        ({"CAPTURE_NAME_PREFIX": "Has Spaces"}, "CAPTURE_NAME_PREFIX"),
        ({"CAPTURE_ALLOWED_SCOPES": "/subscriptions/x/../y"}, "CAPTURE_ALLOWED_SCOPES"),
        ({"ARM_ENDPOINT": "http://127.0.0.1:1"}, "https"),
        (
            {
                "CAPTURE_STORAGE_ACCOUNT_ID": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v"
            },
            "storage account",
        ),
        ({"CAPTURE_STORAGE_ACCOUNT_ID": "", "CAPTURE_LOCAL_PATH": ""}, "CAPTURE_LOCAL_PATH"),
        ({"CAPTURE_LOCAL_PATH": "/tmp/captures"}, "/var/captures"),
        ({"CAPTURE_NOTIFY_URL": "ftp://x"}, "CAPTURE_NOTIFY_URL"),
        ({"CAPTURE_NOTIFY_FORMAT": "email"}, "CAPTURE_NOTIFY_FORMAT"),
        # The flight recorder's ring, within Network Watcher's bounds for continuous capture.
        ({"CAPTURE_RECORDER_FILE_COUNT": "0"}, "CAPTURE_RECORDER_FILE_COUNT"),
        ({"CAPTURE_RECORDER_FILE_COUNT": "10001"}, "CAPTURE_RECORDER_FILE_COUNT"),
        ({"CAPTURE_RECORDER_FILE_SIZE_BYTES": "102399"}, "CAPTURE_RECORDER_FILE_SIZE_BYTES"),
        ({"CAPTURE_RECORDER_FILE_SIZE_BYTES": "4294967296"}, "CAPTURE_RECORDER_FILE_SIZE_BYTES"),
        ({"CAPTURE_RECORDER_SESSION_SECONDS": "604801"}, "CAPTURE_RECORDER_SESSION_SECONDS"),
        ({"CAPTURE_RECORDER_SESSION_SECONDS": "60"}, "CAPTURE_RECORDER_SESSION_SECONDS"),
        ({"CAPTURE_RECORDER_MAX": "-1"}, "CAPTURE_RECORDER_MAX"),
        ({"CAPTURE_RECORDER_TAG": "a/b"}, "CAPTURE_RECORDER_TAG"),
        ({"CAPTURE_QUEUE_NAME": "Capture_Reports"}, "CAPTURE_QUEUE_NAME"),
        ({"CAPTURE_QUEUE_NAME": "a" * 57}, "-poison"),
        ({"CaptureQueue__queueServiceUri": "http://127.0.0.1:10001/x"}, "CaptureQueue__queueServiceUri"),
        ({"CAPTURE_CHECK_MAX_INTERVAL_SECONDS": "30"}, "CAPTURE_CHECK_MAX_INTERVAL_SECONDS"),
        ({"CAPTURE_REQUEUE_AFTER_SECONDS": "60"}, "CAPTURE_REQUEUE_AFTER_SECONDS"),
    ],
)
def test_invalid_settings_name_the_setting(values, fragment, settings_from_env):
    with pytest.raises(SettingsError) as caught:
        settings_from_env(env(**values))
    assert fragment in str(caught.value)


def test_local_path_alone_is_enough(settings_from_env):
    settings = settings_from_env({"CAPTURE_LOCAL_PATH": "/var/captures/alerts"})
    assert settings.storage_account_id is None
    assert settings.default_options().local_path == "/var/captures/alerts"


def test_filters_and_scopes_parse(settings_from_env):
    settings = settings_from_env(
        env(
            CAPTURE_FILTERS='[{"protocol": "tcp", "remotePort": "5432"}, {"localIPAddress": "10.0.0.1-10.0.0.9"}]',
            CAPTURE_ALLOWED_SCOPES="/subscriptions/AAA, /subscriptions/bbb/resourceGroups/rg-app",
            CAPTURE_NOTIFY_FORMAT="Teams",
        )
    )
    assert [f.to_arm() for f in settings.filters] == [
        {"protocol": "TCP", "remotePort": "5432"},
        {"protocol": "Any", "localIPAddress": "10.0.0.1-10.0.0.9"},
    ]
    assert len(settings.allowed_scopes) == 2
    assert settings.notify_format == "teams"


def test_overrides_are_applied_and_bounded_by_configured_maxima(settings_from_env):
    settings = settings_from_env(
        env(CAPTURE_MAX_TIME_LIMIT_SECONDS="600", CAPTURE_BYTES_PER_SESSION="1000000")
    )
    options = settings.capture_options(
        overrides(
            settings,
            {
                "timeLimitSeconds": "120",
                "bytesPerPacket": 34,
                "filters": '[{"protocol": "UDP", "remotePort": "53"}]',
            },
        )
    )
    assert options.time_limit_seconds == 120
    assert options.bytes_per_packet == 34
    assert options.filters[0].to_arm() == {"protocol": "UDP", "remotePort": "53"}
    with pytest.raises(InputError) as too_long:
        overrides(settings, {"timeLimitSeconds": 601})
    assert too_long.value.location == "capture.timeLimitSeconds"
    assert "1..600" in too_long.value.message
    with pytest.raises(InputError, match=r"1\.\.1000000"):
        overrides(settings, {"bytesPerSession": 2000000})


@pytest.mark.parametrize(
    "values",
    [
        {"timeLimitSeconds": True},
        {"timeLimitSeconds": 1.5},
        {"timeLimitSeconds": "-3"},
        {"bytesPerPacket": 4294967296},
        {"filters": {"protocol": "TCP"}},
        {"filters": [{"protocol": "TCP", "bogus": 1}]},
        {"filters": [{"remoteIPAddress": "10.0.0.300"}]},
        {"localPath": "/etc/passwd"},
        {"localPath": 7},
        {"colour": "blue"},
    ],
)
def test_invalid_overrides_are_rejected_with_their_location(values, settings_from_env):
    settings = settings_from_env(env())
    with pytest.raises(InputError) as caught:
        overrides(settings, values)
    assert caught.value.location.startswith("capture.")


def test_every_setting_the_app_reads_is_in_the_readme_table():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Za-z_]+)` \|", section, flags=re.MULTILINE)
    assert sorted(documented) == sorted(setting_names())


def test_recorder_defaults_and_the_slot_it_leaves_for_alerts(settings_from_env):
    settings = settings_from_env(env())
    assert (settings.recorder_tag, settings.recorder_max, settings.recorder_limit) == (
        "capture-recorder",
        2,
        2,
    )
    # 10 files of 400 MiB: about the last 10 minutes of a VM capturing ~7 MB/s (~56 Mbit/s).
    assert settings.recorder_file_count * settings.recorder_file_size_bytes == 10 * 400 * 2**20
    assert settings_from_env(env(CAPTURE_MAX_SESSIONS="2", CAPTURE_RECORDER_MAX="5")).recorder_limit == 1
    local_only = {"CAPTURE_LOCAL_PATH": "/var/captures"}
    assert settings_from_env(local_only).recorder_limit == 0  # the recorder reads its files from storage
