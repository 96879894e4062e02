"""`make mutate`: mutation testing of the security core with cosmic-ray.

Each module of ``tools/mutation.toml`` is mutated in a copy of the repository (cosmic-ray
writes mutants to disk), and each mutant is run against that module's tests only. Prints a
score per module and every survivor with its diff. ``MODULES="a.py b.py"`` narrows the run;
``MUTATE_DIR`` names its work directory (default ``.mutate/``); ``RESCORE=1`` runs only the last
run's survivors again, against the tests as they are now (the sources must be unchanged), and
whatever it had not run yet; ``MUTATE_WORKERS=2`` runs two mutants at a time.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Two runs at once need two directories: MUTATE_DIR=.mutate-2 (each run but RESCORE empties its
# own, sessions of other modules included).
WORK = REPO / os.environ.get("MUTATE_DIR", ".mutate")
BIN = Path(sys.executable).parent
# RESCORE=1: run the last run's survivors again (after new tests), keeping its other results.
RESCORE = os.environ.get("RESCORE") == "1"
# MUTATE_WORKERS=2: mutants run two at a time, each worker in its own copy of the repository
# (cosmic-ray's http distributor); the default is one, the local distributor.
WORKERS = int(os.environ.get("MUTATE_WORKERS", "1"))


def copy_repo(into: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    for name in filter(None, files.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def test_command(tests: list[str]) -> str:
    # Hypothesis's pytest plugin costs seconds of start-up per mutant; only tests that use
    # Hypothesis need it.
    uses = any("hypothesis" in (REPO / t).read_text(encoding="utf-8") for t in tests)
    plugins = "" if uses else "-p no:hypothesispytest "
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider {plugins}" + " ".join(tests)


def baseline(copy: Path, env: dict[str, str], tests: list[str]) -> float:
    """Seconds the module's tests take unmutated; refuses to go on if they fail (every mutant
    would count as killed)."""
    started = time.monotonic()
    done = subprocess.run(test_command(tests).split(), cwd=copy, env=env, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"the tests fail before any mutation:\n{done.stdout.decode()[-3000:]}")
    return time.monotonic() - started


def config(
    module: str, tests: list[str], exclude: list[str], timeout: float, urls: list[str]
) -> str:
    command = test_command(tests)
    excluded = ", ".join(f"'{e}'" for e in exclude)
    distributor = (
        'name = "http"\n\n[cosmic-ray.distributor.http]\nworker-urls = ['
        + ", ".join(f"'{u}'" for u in urls)
        + "]\n"
        if urls
        else 'name = "local"\n'
    )
    return (
        f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = {timeout:.0f}.0\n'
        f"excluded-modules = []\n"
        f'test-command = "{command}"\n\n[cosmic-ray.distributor]\n{distributor}\n'
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def workers(copies: list[Path]) -> Iterator[list[str]]:
    """One ``cosmic-ray http-worker`` per copy of the repository (a worker mutates the files
    of its own working directory), each on a port of its own; their URLs."""
    if len(copies) < 2:
        yield []
        return
    started: list[subprocess.Popen] = []
    urls = []
    try:
        for copy in copies:
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(copy)}
            started.append(
                subprocess.Popen(
                    [str(BIN / "cosmic-ray"), "http-worker", "--port", str(port)],
                    cwd=copy,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            port = int(url.rsplit(":", 1)[1])
            give_up = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > give_up:
                        raise RuntimeError(f"the mutation worker at {url} did not start") from None
                    time.sleep(0.2)
        yield urls
    finally:
        for proc in started:
            proc.terminate()
            proc.wait()


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's annotations are, if it never evaluates them (``from __future__
    import annotations`` makes each a string): a mutant inside one cannot change anything."""
    tree = ast.parse(source)
    future = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    if not future:
        return []
    nodes: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            nodes.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            nodes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            nodes.append(node.annotation)
    return [
        ((n.lineno, n.col_offset), (n.end_lineno or n.lineno, n.end_col_offset or 0)) for n in nodes
    ]


def skip_annotations(session: Path, source: str) -> None:
    """Mark the mutants inside annotations skipped, as cosmic-ray's own filters do."""
    spans = annotation_spans(source)
    with sqlite3.connect(session) as db:
        specs = db.execute("SELECT job_id, start_pos_row, start_pos_col FROM mutation_specs")
        inside = [
            job
            for job, row, col in specs.fetchall()
            if any(start <= (row, col) < end for start, end in spans)
        ]
        db.executemany(
            "INSERT OR REPLACE INTO work_results (worker_outcome, output, test_outcome, diff, "
            "job_id) VALUES ('SKIPPED', 'Inside an annotation', NULL, NULL, ?)",
            [(job,) for job in inside],
        )


def run_module(
    copies: list[Path], module: str, tests: list[str], exclude: list[str]
) -> tuple[int, int]:
    copy = copies[0]
    name = module.replace("/", "_").removesuffix(".py")
    cfg, session = WORK / f"{name}.toml", WORK / f"{name}.sqlite"
    env = {**os.environ, "PYTHONPATH": str(copy)}  # the copy first, not the editable install
    # A mutant that loops forever is killed by the timeout; five times the unmutated run (the
    # load on a shared machine varies), and never under a minute.
    timeout = max(60.0, 5 * baseline(copy, env, tests))
    if RESCORE:
        # Only the survivors run again (cosmic-ray executes the mutants without a result).
        with sqlite3.connect(session) as db:
            db.execute("DELETE FROM work_results WHERE upper(test_outcome) = 'SURVIVED'")
        steps = [[BIN / "cosmic-ray", "exec", cfg, session]]
    else:
        session.unlink(missing_ok=True)
        steps = [
            [BIN / "cosmic-ray", "init", cfg, session],
            [BIN / "cr-filter-operators", session, cfg],
            [BIN / "cr-filter-pragma", session],
            [BIN / "cosmic-ray", "exec", cfg, session],
        ]
    with workers(copies) as urls:
        cfg.write_text(config(module, tests, exclude, timeout, urls), encoding="utf-8")
        for step in steps[:-1]:
            subprocess.run([str(s) for s in step], cwd=copy, env=env, check=True)
        skip_annotations(session, (copy / module).read_text(encoding="utf-8"))
        subprocess.run([str(s) for s in steps[-1]], cwd=copy, env=env, check=True)
    db = sqlite3.connect(session)
    rows = db.execute(
        "SELECT s.start_pos_row, s.operator_name, r.test_outcome, r.diff FROM work_results r "
        "JOIN mutation_specs s USING (job_id) WHERE upper(r.worker_outcome) = 'NORMAL'"
    ).fetchall()
    killed = sum(1 for _row, _op, outcome, _diff in rows if outcome.upper() != "SURVIVED")
    hung = db.execute(
        "SELECT count(*) FROM work_results "
        "WHERE upper(test_outcome) = 'KILLED' AND output = 'timeout'"
    ).fetchone()[0]
    survivors = [
        (row, op, diff) for row, op, outcome, diff in rows if outcome.upper() == "SURVIVED"
    ]
    print(
        f"{module}: {killed}/{len(rows)} killed ({100 * killed / max(1, len(rows)):.1f} %), "
        f"{hung} of them by the {timeout:.0f} s timeout"
    )
    for row, op, diff in sorted(survivors):
        print(
            f"  SURVIVED {module}:{row} {op}\n" + "\n".join(f"    {d}" for d in diff.splitlines())
        )
    return killed, len(rows)


def main() -> int:
    plan = tomllib.loads((REPO / "tools" / "mutation.toml").read_text(encoding="utf-8"))
    wanted = os.environ.get("MODULES", "").split() or list(plan["modules"])
    copies = [WORK / "repo", *(WORK / f"repo-{n}" for n in range(2, WORKERS + 1))]
    copy = copies[0]
    if RESCORE:
        # New tests for the survivors of the last run: valid only while the mutated sources
        # are what that run mutated (else its mutants are not this code's).
        for module in wanted:
            name = module.replace("/", "_").removesuffix(".py")
            if not (WORK / f"{name}.sqlite").exists():
                sys.exit(f"{module} has no last run in {WORK}: run without RESCORE")
            if (copy / module).read_bytes() != (REPO / module).read_bytes():
                sys.exit(f"{module} changed since the last run: run without RESCORE")
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    for each in copies:
        copy_repo(each)
    scores = {
        m: run_module(copies, m, plan["modules"][m], plan["operators"]["exclude"]) for m in wanted
    }
    print("\nmodule | killed | mutants | score")
    for module, (killed, total) in scores.items():
        print(f"{module} | {killed} | {total} | {100 * killed / max(1, total):.1f} %")
    return 0 if all(k >= 0.9 * t for k, t in scores.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
