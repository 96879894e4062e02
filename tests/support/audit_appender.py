"""A worker process for the audit-log tests: appends events with several concurrent tasks
and prints ``<index> <tag> <n>`` for each acknowledged append, flushed at once, so a test
that kills it knows exactly which appends the log promised to keep.

python -m tests.support.audit_appender URL KEYS_DIR TAG COUNT [--schema S] [--tasks T]
(COUNT 0 means: until killed)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from pathlib import Path

from connectors.sql.engine import create_engine_for
from security.audit import AuditLogConfig, open_audit_log


async def run(args: argparse.Namespace) -> None:
    engine = create_engine_for(args.url, args.schema)
    log = open_audit_log(engine, Path(args.keys), AuditLogConfig(checkpoint_every=50))
    numbers = itertools.count() if args.count == 0 else iter(range(args.count))

    async def worker() -> None:
        for n in numbers:
            receipt = await log.append({"tag": args.tag, "n": n, "pad": "x" * 200})
            sys.stdout.write(f"{receipt.index} {args.tag} {n}\n")
            sys.stdout.flush()

    await asyncio.gather(*(worker() for _ in range(args.tasks)))
    await log.close()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("keys")
    parser.add_argument("tag")
    parser.add_argument("count", type=int)
    parser.add_argument("--schema")
    parser.add_argument("--tasks", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
