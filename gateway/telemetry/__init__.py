"""Telemetry: JSON logs in every process, Prometheus metrics, OpenTelemetry traces.

Nothing personal leaves through any of them (docs/telemetry.md says what may and why): log
lines carry what the gateway decided (route, status, role, organisation), metric labels come
from closed sets (operation names, source names, codes, data classes) and span attributes
pass one filter (:mod:`gateway.telemetry.redact`).
"""
