"""``medfed serve``: run the gateway under uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve", help="serve the GraphQL gateway")
    add_common(serve)
    serve.add_argument("--host", help="listen address (default from config, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config, 8000)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from connectors.sql import migrate
    from gateway.app import create_app

    settings = settings_from(args)
    # The gateway's own database (audit log, consents, idempotency keys) must be at head
    # before the first request is audited; migrating an up-to-date database does nothing.
    asyncio.run(migrate.upgrade(settings.gateway_spec))
    host = args.host or settings.host
    port = args.port or settings.port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)  # fails here, with one line, on bad config or missing keys
    print(f"medfed: serving http://{host}:{port}/graphql"
          f"{' (dev mode: GraphiQL on)' if settings.dev else ''}", flush=True)
    if args.workers > 1:
        # Each worker process builds its own app from the same settings, passed by environment.
        if settings.config_path is not None:
            os.environ["MEDFED_CONFIG"] = str(settings.config_path)
        os.environ["MEDFED_DATA_DIR"] = str(settings.data_dir)
        uvicorn.run("gateway.app:app_from_environment", factory=True, host=host, port=port,
                    workers=args.workers, log_level="info", access_log=False)
        return 0
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
    return 0
