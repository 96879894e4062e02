"""requirements.lock, which `make` installs from, pins every dependency pyproject.toml declares
(run `make lock` after adding one), each at a version its declared range allows."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.support import REPO


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, rest = line.partition("==")
            pins[_name(name.strip())] = rest.split(";")[0].strip()
    return pins


def test_every_declared_dependency_is_pinned_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = _locked()
    unpinned = [d for d in declared if _name(Requirement(d).name) not in locked]
    assert unpinned == [], "run `make lock`"
    outside = [
        (d, locked[_name(Requirement(d).name)])
        for d in declared
        if not Requirement(d).specifier.contains(locked[_name(Requirement(d).name)])
    ]
    assert outside == []
    assert len(locked) > len(declared)  # the transitive ones are pinned too
