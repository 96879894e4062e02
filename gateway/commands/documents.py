"""``medfed documents add FILE...``: register trusted documents (operations partners may run
by hash). Prints each document's SHA-256, which clients send as
``extensions.persistedQuery.sha256Hash``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    documents = subparsers.add_parser("documents", help="register trusted documents")
    actions = documents.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="register GraphQL documents; print their hashes",
        description="Register each FILE (one GraphQL document with its "
        "operations and fragments) in the gateway database. Registering "
        "the same text again changes nothing.",
    )
    add_common(add)
    add.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add.set_defaults(handler=_add)


def _add(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.documents import DocumentError, check_document

    texts: list[tuple[Path, str]] = []
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8")
            check_document(text)
        except (OSError, UnicodeDecodeError, DocumentError) as exc:
            raise UsageError(f"{path}: {exc}") from None
        texts.append((path, text))
    return asyncio.run(_register(args, texts))


async def _register(args: argparse.Namespace, texts: list[tuple[Path, str]]) -> int:
    from connectors.sql import migrate
    from connectors.sql.engine import create_source_engine
    from security.documents import DocumentStore

    settings = settings_from(args)
    await migrate.upgrade(settings.gateway_spec)
    engine = create_source_engine(settings.gateway_spec)
    try:
        store = DocumentStore(engine)
        for path, text in texts:
            digest, added = await store.add(text, name=path.name)
            print(f"{digest}  {path}{'' if added else '  (already registered)'}")
    finally:
        await engine.dispose()
    return 0
