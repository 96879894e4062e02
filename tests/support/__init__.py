"""Helpers shared by the tests: worlds of sources, processes, tokens, audit readers.

Test modules import from here (and fixtures come from ``conftest.py``), never from each other.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
