"""A fixed sample of mutants of the security core, each of which the tests must kill.

``make mutate`` scores every mutant of the core (cosmic-ray, slow; docs/mutation.md). This is
its small, fixed part inside ``make test``: each mutant below is a bug the suite once missed or
one that matters most (the floor, absolute denials, masks, the Merkle tree, verify, the
cipher's key cache, the default of the guard, consent). It is applied to a copy of the
repository and the tests named with it are run there in a subprocess; they must fail. If
someone weakens those tests, this test fails in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

POLICY = "tests/security/policy/test_policy_synthetic.py"
MASKS = "tests/security/test_masking.py"
GUARD = "tests/security/test_enforcement.py"
CONSENT = "tests/security/consent/test_consent.py"
MERKLE = "tests/security/audit/test_audit_merkle.py"
EDITED = "tests/gateway/commands/test_audit_cli.py::test_tampering_is_named_by_its_first_index"
TAIL = (
    "tests/gateway/commands/test_audit_verify.py::"
    "test_an_intact_log_with_an_unsigned_tail_verifies_and_names_the_tail"
)
RETIRED = (
    "tests/security/crypto/test_crypto_fields.py::"
    "test_a_long_lived_cipher_stops_opening_values_under_a_key_retired_in_process"
)

# (name, file, the exact text, what it becomes, the tests that must fail)
MUTANTS = [
    (
        "deny return deleted",
        "security/policy/decide.py",
        "            return Decision.DENY, denial.why",
        "            pass",
        [POLICY],
    ),
    (
        "floor disabled",
        "security/policy/decide.py",
        "        and relation not in floor.relations\n",
        "        and False\n",
        [POLICY],
    ),
    (
        "floor level off by one",
        "security/policy/decide.py",
        "entry.level >= floor.level",
        "entry.level > floor.level",
        [POLICY],
    ),
    (
        "level 2 taken for public",
        "security/policy/decide.py",
        "if entry.level == 1:",
        "if entry.level <= 2:",
        [POLICY],
    ),
    (
        "no rule allows",
        "security/policy/decide.py",
        "    else:\n        return Decision.DENY, (",
        "    else:\n        return Decision.ALLOW, (",
        [POLICY],
    ),
    (
        "relation not checked",
        "security/policy/rules.py",
        "        if relation not in self.relations:\n            return False\n",
        "",
        [POLICY],
    ),
    (
        "phone mask hides three",
        "security/masking.py",
        "PHONE_HIDDEN = 4",
        "PHONE_HIDDEN = 3",
        [MASKS],
    ),
    (
        "one-character name shown",
        "security/masking.py",
        "    if len(value) <= 1:",
        "    if len(value) < 1:",
        [MASKS],
    ),
    (
        "ID mask shows the head of short values",
        "security/masking.py",
        "    head = min(head, shown - tail)",
        "    head = min(head, shown)",
        [MASKS],
    ),
    (
        "guard defaults to allow",
        "security/enforcement.py",
        "    return Decision.DENY, NO_POLICY",
        "    return Decision.ALLOW, NO_POLICY",
        [GUARD],
    ),
    (
        "a denied row is shown",
        "security/enforcement.py",
        "        if decision is not Decision.DENY:\n            return True\n        path",
        "        if True:\n            return True\n        path",
        [GUARD],
    ),
    (
        "consent purpose ignored",
        "security/consent/store.py",
        "            and self.purpose == str(purpose).upper()\n",
        "",
        [CONSENT],
    ),
    (
        "Merkle children swapped",
        "security/audit/merkle.py",
        'return hashlib.sha256(b"\\x01" + left + right).digest()',
        'return hashlib.sha256(b"\\x01" + right + left).digest()',
        [MERKLE],
    ),
    (
        "verify ignores edited events",
        "security/audit/verify.py",
        "        if computed != leaf:",
        "        if False:",
        [EDITED],
    ),
    (
        "verify hides the unsigned tail",
        "security/audit/verify.py",
        "            if self.unsigned:",
        "            if False:",
        [TAIL],
    ),
    (
        "cipher keeps retired keys",
        "security/crypto/field_cipher.py",
        "        if self._generation != self._keyring.generation:",
        "        if self._generation == self._keyring.generation:",
        [RETIRED],
    ),
]


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The repository's tracked files (and the built web assets they need), copied once."""
    root = tmp_path_factory.mktemp("mutants") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / name.decode()
        if source.is_file():
            target = root / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return root


@pytest.mark.parametrize("name,path,text,mutated,tests", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_the_tests_kill_the_mutant(copy, name, path, text, mutated, tests):
    target = copy / path
    original = target.read_text(encoding="utf-8")
    assert original.count(text) == 1, f"{name}: the text to mutate is not in {path} once"
    target.write_text(original.replace(text, mutated), encoding="utf-8")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            # The copy first: the editable install would otherwise import the real sources.
            env={**os.environ, "PYTHONPATH": str(copy)},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        target.write_text(original, encoding="utf-8")
    assert run.returncode == 1, f"{name} survived {tests}:\n{run.stdout[-2000:]}"
    assert " failed" in run.stdout, run.stdout[-2000:]


def test_the_unmutated_copy_passes_the_same_tests(copy):
    """The control: a copy that fails anyway would make every mutant look killed, and one
    that imported the real sources would make every mutant survive."""
    where = subprocess.run(
        [sys.executable, "-c", "import security.masking as m; print(m.__file__)"],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(copy), where.stdout
    tests = sorted({t for *_, group in MUTANTS for t in group})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:]
