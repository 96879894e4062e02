"""Where the serving processes keep their metrics files (prometheus-client's multiprocess
mode). Imports nothing of prometheus-client: it must run before that is first imported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess(data_dir: Path) -> Path:
    """Empty ``data_dir/metrics`` and point prometheus-client at it (the workers inherit the
    variable); a previous run's files would otherwise be added to this run's counts."""
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder
