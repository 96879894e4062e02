"""Compose the subgraphs into a supergraph with the committed composer (a Node script)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from strawberry.printer import print_schema

from schema.federation.subgraphs import SUBGRAPHS, build_subgraph
from security.errors import MedfedError

REPO = Path(__file__).resolve().parents[2]
COMPOSER = REPO / "tools" / "compose-supergraph.mjs"


class CompositionError(MedfedError, RuntimeError):
    """The subgraphs do not compose, or the composer is not installed."""


def subgraph_sdl(name: str) -> str:
    """What the subgraph answers to ``{ _service { sdl } }``."""
    return print_schema(build_subgraph(name, dev=False))


def compose(urls: Mapping[str, str]) -> str:
    """The supergraph SDL routing each subgraph to its URL (``http://host:port/graphql``)."""
    node = shutil.which("node")
    if node is None:
        raise CompositionError("node is not installed (the composer is a Node package)")
    if not (REPO / "node_modules" / "@theguild" / "federation-composition").is_dir():
        raise CompositionError("the composer is not installed: run `npm ci` in the repository")
    services = [{"name": name, "url": urls[name], "sdl": subgraph_sdl(name)} for name in SUBGRAPHS]
    # A fixed argv (no shell); the SDL goes in on stdin.
    done = subprocess.run(  # noqa: S603
        [node, str(COMPOSER)],
        input=json.dumps(services),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise CompositionError(f"the subgraphs do not compose: {done.stderr.strip()}")
    return done.stdout
