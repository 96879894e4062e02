"""``[telemetry]`` in medfed.toml, checked key by key (a mistake is one line naming it).

```toml
[telemetry]
metrics_listen = "127.0.0.1:9464"   # /metrics on its own address; unset: no metrics server
traces = "off"                      # off | console | otlp
otlp_endpoint = "http://127.0.0.1:4318/v1/traces"
service_name = "medfed"
sample_ratio = 1.0                  # of new traces
trusted_trace_callers = []          # routers and peer gateways whose traceparent is continued
```
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from gateway.config import ConfigError, Settings
from gateway.telemetry.trust import Network

TRACES = ("off", "console", "otlp")
_KEYS = {
    "metrics_listen",
    "traces",
    "otlp_endpoint",
    "service_name",
    "sample_ratio",
    "trusted_trace_callers",
}


@dataclass(frozen=True)
class TelemetrySettings:
    metrics_listen: tuple[str, int] | None = None
    traces: str = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "medfed"
    sample_ratio: float = 1.0
    trusted_trace_callers: tuple[Network, ...] = ()


def networks(key: str, raw: object) -> tuple[Network, ...]:
    """``raw``: a list of addresses or CIDR networks (``"10.1.0.7"``, ``"10.2.0.0/16"``)."""
    if not isinstance(raw, list):
        raise ConfigError(key, 'must be a list of addresses or networks, e.g. ["10.1.0.0/24"]')
    found = []
    for item in raw:
        try:
            found.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ConfigError(key, f"'{item}' is not an IP address or network") from None
    return tuple(found)


def listen_address(key: str, raw: object) -> tuple[str, int]:
    host, sep, port = str(raw).rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(key, f"'{raw}' must be HOST:PORT (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


def telemetry_settings(settings: Settings) -> TelemetrySettings:
    raw: Any = settings.extra.get("telemetry", {})
    if not isinstance(raw, dict):
        raise ConfigError("telemetry", "must be a table ([telemetry])")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(
            f"telemetry.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_KEYS))})"
        )
    listen = raw.get("metrics_listen")
    traces = raw.get("traces", "off")
    if traces not in TRACES:
        raise ConfigError("telemetry.traces", f"'{traces}' must be one of {', '.join(TRACES)}")
    endpoint = raw.get("otlp_endpoint", TelemetrySettings.otlp_endpoint)
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ConfigError("telemetry.otlp_endpoint", f"'{endpoint}' must be an http(s) URL")
    name = raw.get("service_name", "medfed")
    if not isinstance(name, str) or not name:
        raise ConfigError("telemetry.service_name", "must be a non-empty string")
    ratio = raw.get("sample_ratio", 1.0)
    if not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise ConfigError("telemetry.sample_ratio", f"'{ratio}' must be from 0 to 1")
    return TelemetrySettings(
        metrics_listen=None
        if listen is None
        else listen_address("telemetry.metrics_listen", listen),
        traces=traces,
        otlp_endpoint=endpoint,
        service_name=name,
        sample_ratio=float(ratio),
        trusted_trace_callers=networks(
            "telemetry.trusted_trace_callers", raw.get("trusted_trace_callers", [])
        ),
    )
