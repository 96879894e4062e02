"""The Prometheus metrics (docs/telemetry.md explains each) and how they are served.

``medfed serve`` runs prometheus-client in multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``
is the data directory's ``metrics/`` folder, emptied at start and set before this module is
first imported (prometheus-client picks its value store at import), so every ``--workers``
process writes its own files and the scrape adds them up. Without it (tests, an app built in
process) the metrics live in this process's default registry.

Every label comes from a closed set: route templates, operation names that passed
:func:`gateway.telemetry.names.operation_label`, source names from ``medfed.toml``, error
codes, data classes of the catalogue, key ids and partner organisation codes. None is a
value a caller sent or a row held.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

from gateway.telemetry.metrics_dir import MULTIPROC_ENV

# Request and fetch latencies: 1 ms to 10 s (the gateway's deadline is 5 s by default).
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "medfed_requests_total",
    "HTTP requests answered, by route, GraphQL operation and status",
    ["route", "operation", "status"],
)
REQUEST_SECONDS = Histogram(
    "medfed_request_duration_seconds",
    "time from the first byte in to the last byte out, by route, operation and status",
    ["route", "operation", "status"],
    buckets=LATENCY,
)
REFUSALS = Counter(
    "medfed_refusals_total",
    "refusals and errors by their extensions.code (HTTP refusals and GraphQL errors)",
    ["code"],
)
FIELDS = Counter(
    "medfed_fields_total",
    "field values masked or denied by the policy, by the catalogue's data class",
    ["data_class", "decision"],
)
SOURCE_SECONDS = Histogram(
    "medfed_source_fetch_duration_seconds",
    "one fetch from one source, by source, kind and outcome (ok or a stable reason)",
    ["source", "kind", "outcome"],
    buckets=LATENCY,
)
SOURCE_ERRORS = Counter(
    "medfed_source_errors_total",
    "fetches that failed, by source and stable reason (DEADLINE_EXCEEDED, FILE_MISSING, ...)",
    ["source", "reason"],
)
SOURCE_STATE = Gauge(
    "medfed_source_state",
    "0 healthy (breaker closed), 1 half-open, 2 down (guard or breaker open); the worst worker",
    ["source"],
    multiprocess_mode="max",
)
AUDIT_QUEUE = Gauge(
    "medfed_audit_queue_depth",
    "audit appends waiting for their commit, summed over live workers",
    multiprocess_mode="livesum",
)
AUDIT_COMMIT_SECONDS = Histogram(
    "medfed_audit_commit_duration_seconds",
    "one audit append, from the request's hand-off to its durable commit",
    buckets=LATENCY,
)
AUDIT_CHECKPOINT = Gauge(
    "medfed_audit_last_checkpoint_timestamp_seconds",
    "when this gateway last signed an audit checkpoint (Unix time; age = time() - this)",
    multiprocess_mode="max",
)
KEY_CREATED = Gauge(
    "medfed_key_created_timestamp_seconds",
    "when each live key of the keyring was created (Unix time; age = time() - this)",
    ["key_id", "purpose"],
    multiprocess_mode="max",
)
BUDGET_SPENT = Gauge(
    "medfed_privacy_budget_spent_epsilon",
    "privacy budget (epsilon) a partner has spent in its current period, from the ledger",
    ["partner", "period"],
    multiprocess_mode="max",
)

STATE_VALUES = {"ok": 0, "closed": 0, "half_open": 1, "half-open": 1, "open": 2}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a SIGKILLed worker is a zombie until uvicorn reaps it, and a
    zombie still answers ``kill(pid, 0)``, so its state is read too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process took the pid: not ours, but not to be touched
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill()
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def sweep_dead(folder: Path) -> list[int]:
    """Drops the live gauges (``livesum``, ``liveall``) of every process that wrote them and is
    gone. A worker that exits cleanly drops its own (the lifespan's end); one that was
    SIGKILLed or crashed cannot, and its last audit-queue depth would stay in the sum."""
    dead: set[int] = set()
    for path in folder.glob("gauge_live*_*.db"):
        written_by = path.stem.rpartition("_")[2]
        if written_by.isdigit() and not alive(int(written_by)):
            dead.add(int(written_by))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(folder))
    return sorted(dead)


class SweptCollector:
    """prometheus-client's ``MultiProcessCollector``, after the dead processes' live gauges
    are dropped: each scrape sees only the workers running now, whenever the supervisor
    noticed (or will notice) a death. The start of ``medfed serve`` empties the folder, so
    processes of an earlier run never count."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.inner = multiprocess.MultiProcessCollector(None, str(folder))

    def collect(self) -> Iterable[Metric]:
        sweep_dead(self.folder)
        return self.inner.collect()


def registry() -> CollectorRegistry:
    """What a scrape reads: every live process's files in multiprocess mode, else this
    process."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        collected = CollectorRegistry()
        collected.register(SweptCollector(Path(folder)))
        return collected
    return REGISTRY


def exposition() -> bytes:
    return generate_latest(registry())


def process_exited(pid: int | None = None) -> None:
    """A worker's live gauges stop counting once it is gone."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid or os.getpid())
