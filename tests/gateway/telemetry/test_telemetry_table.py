"""``[telemetry]``: every key checked, a mistake one line naming it; defaults are off."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_settings
from gateway.config.tables import TelemetrySettings


def settings(tmp_path, body: str):
    path = tmp_path / "medfed.toml"
    path.write_text(body, encoding="utf-8")
    return load_settings(path, env={}).config.telemetry


def test_nothing_configured_is_off(tmp_path):
    assert settings(tmp_path, "") == TelemetrySettings()
    assert TelemetrySettings().traces == "off" and TelemetrySettings().metrics_listen is None


def test_a_full_table(tmp_path):
    got = settings(
        tmp_path,
        '[telemetry]\nmetrics_listen = "127.0.0.1:9464"\ntraces = "otlp"\n'
        'otlp_endpoint = "http://collector:4318/v1/traces"\nsample_ratio = 0.25\n'
        'trusted_trace_callers = ["10.1.0.7", "10.2.0.0/16", "fd00::/8"]\n',
    )
    assert [str(n) for n in got.trusted_trace_callers] == ["10.1.0.7/32", "10.2.0.0/16", "fd00::/8"]
    assert got.metrics_listen == ("127.0.0.1", 9464)
    assert (got.traces, got.otlp_endpoint, got.sample_ratio) == (
        "otlp",
        "http://collector:4318/v1/traces",
        0.25,
    )


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('metrics_listen = "9464"', "telemetry.metrics_listen"),
        ('metrics_listen = "host:99999"', "telemetry.metrics_listen"),
        ('traces = "jaeger"', "telemetry.traces"),
        ('otlp_endpoint = "collector:4318"', "telemetry.otlp_endpoint"),
        ("sample_ratio = 2", "telemetry.sample_ratio"),
        ("tracing = true", "telemetry.tracing"),
        ('trusted_trace_callers = "10.0.0.0/8"', "telemetry.trusted_trace_callers"),
        ('trusted_trace_callers = ["router.internal"]', "telemetry.trusted_trace_callers"),
    ],
)
def test_a_mistake_names_its_key(tmp_path, body, key):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, f"[telemetry]\n{body}\n")
    assert err.value.key == key
