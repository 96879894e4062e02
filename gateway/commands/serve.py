"""``medfed serve``: run the gateway under uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from gateway.commands import add_common, settings_from

# Kept here (not imported from schema.federation) so `medfed --help` stays fast.
SUBGRAPH_NAMES = ("records", "results", "settlement")


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve", help="serve the GraphQL gateway")
    add_common(serve)
    serve.add_argument("--host", help="listen address (default from config, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config, 8000)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--subgraph",
        choices=sorted(SUBGRAPH_NAMES),
        help="serve one Apollo Federation 2 subgraph instead of the merged schema",
    )
    serve.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve HTTPS with this PEM certificate chain (with --tls-key; "
        "default [server] tls_cert)",
    )
    serve.add_argument(
        "--tls-key",
        metavar="FILE",
        help="the PEM private key of --tls-cert (default [server] tls_key)",
    )
    serve.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="mutual TLS: refuse clients without a certificate signed by this "
        "PEM CA (default [server] tls_client_ca)",
    )
    serve.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics on this separate address (default [telemetry] "
        "metrics_listen; unset: no metrics server)",
    )
    serve.set_defaults(handler=_run)
    # Registered beside serve: it composes what `serve --subgraph` serves.
    supergraph = subparsers.add_parser(
        "supergraph", help="compose the three subgraphs into a supergraph for a router"
    )
    add_common(supergraph)
    supergraph.add_argument("--output", help="write here instead of standard output")
    supergraph.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="where the router reaches a subgraph (default "
        "http://127.0.0.1:800N/graphql, records 8001, results 8002, "
        "settlement 8003); repeat per subgraph",
    )
    supergraph.set_defaults(handler=_supergraph)


def _tls_options(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """uvicorn's ssl_* arguments, or {} for plain HTTP. Each flag overrides its [server] key;
    every file is read and loaded here so a mistake is one line naming the flag (or key)
    instead of a traceback from a uvicorn worker, and so TLS is never silently dropped."""
    from gateway.cli import UsageError

    chosen: dict[str, tuple[Path, str] | None] = {}
    for name in ("tls_cert", "tls_key", "tls_client_ca"):
        flag = getattr(args, name)
        if flag is not None:
            chosen[name] = (Path(flag), "--" + name.replace("_", "-"))
        else:
            configured = getattr(settings, name)
            chosen[name] = (configured, f"server.{name}") if configured is not None else None
    cert, key, client_ca = chosen["tls_cert"], chosen["tls_key"], chosen["tls_client_ca"]
    if cert is None and key is None and client_ca is None:
        return {}
    if cert is None or key is None:
        missing = "--tls-cert" if cert is None else "--tls-key"
        given = next(label for _, label in (p for p in (cert, key, client_ca) if p is not None))
        raise UsageError(f"{missing}: required with {given} (TLS needs a certificate and its key)")
    for path, label in (p for p in (cert, key, client_ca) if p is not None):
        try:
            path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{label}: cannot read '{path}' ({exc.strerror or exc})") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert[0]), str(key[0]))
    except (ssl.SSLError, ValueError) as exc:
        raise UsageError(
            f"{cert[1]}/{key[1]}: '{cert[0]}' and '{key[0]}' are not a PEM "
            f"certificate and its private key ({exc})"
        ) from None
    options: dict[str, Any] = {"ssl_certfile": str(cert[0]), "ssl_keyfile": str(key[0])}
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca[0]))
        except (ssl.SSLError, ValueError) as exc:
            raise UsageError(
                f"{client_ca[1]}: '{client_ca[0]}' holds no PEM CA certificate ({exc})"
            ) from None
        options.update(ssl_ca_certs=str(client_ca[0]), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


WORKER_HEALTHCHECK_SECONDS = 30


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from connectors.sql import migrate
    from gateway.telemetry.logs import configure_json_logging, log_config

    settings = settings_from(args)
    tls = _tls_options(args, settings)
    metrics_at = _metrics_address(args, settings)
    # Before anything imports prometheus-client: every process of this server (the workers
    # inherit the variable) writes its metrics under the data directory; emptied each start.
    from gateway.telemetry.metrics_dir import prepare_multiprocess

    prepare_multiprocess(settings.data_dir)
    from gateway.app import create_app

    # The gateway's own database (audit log, consents, idempotency keys) must be at head
    # before the first request is audited; migrating an up-to-date database does nothing.
    asyncio.run(migrate.upgrade(settings.gateway_spec))
    host = args.host or settings.host
    port = args.port or settings.port
    # JSON lines on stderr here, in uvicorn's own loggers and in every worker it spawns.
    configure_json_logging()
    logs = log_config(logging.getLevelName(logging.getLogger().level))
    # Fails here, with one line, on bad config or missing keys.
    app = create_app(settings, subgraph=args.subgraph)
    if metrics_at is not None:
        from gateway.telemetry.server import serve_metrics

        serve_metrics(*metrics_at)
    what = f"subgraph {args.subgraph}" if args.subgraph else "gateway"
    scheme = "https" if tls else "http"
    mutual = " (mutual TLS: client certificate required)" if "ssl_ca_certs" in tls else ""
    print(
        f"medfed: serving {what} on {scheme}://{host}:{port}/graphql{mutual}"
        f"{' (dev mode: GraphiQL on)' if settings.dev else ''}",
        flush=True,
    )
    if args.workers > 1:
        from uvicorn.supervisors import Multiprocess

        from gateway.workers import factory

        # Each worker builds its own app from these settings, handed over with the factory
        # (uvicorn.run would want an import string, and so settings in the environment).
        config = uvicorn.Config(
            factory(settings, args.subgraph),
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            # A worker that has not answered its supervisor's ping within this is killed and
            # replaced; uvicorn's 5 s kills workers still importing on a loaded machine.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            log_config=logs,
            access_log=False,
            **tls,
        )
        from gateway.reuseport import reuse_port_available, serve_workers

        if reuse_port_available():
            # A socket per worker, so the kernel shares the connections out (reuseport.py).
            serve_workers(config)
        else:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    uvicorn.run(app, host=host, port=port, log_config=logs, access_log=False, **tls)
    return 0


def _metrics_address(args: argparse.Namespace, settings: Any) -> tuple[str, int] | None:
    from gateway.cli import UsageError
    from gateway.config.tables import listen_address

    if args.metrics_listen is None:
        return settings.config.telemetry.metrics_listen
    try:
        return listen_address(args.metrics_listen)
    except ValueError as exc:
        raise UsageError(f"--metrics-listen: {exc}") from None


def _supergraph(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from schema.federation.compose import CompositionError, compose

    urls = {name: f"http://127.0.0.1:{8001 + i}/graphql" for i, name in enumerate(SUBGRAPH_NAMES)}
    for item in args.url:
        name, sep, url = item.partition("=")
        if not sep or name not in urls or not url.startswith(("http://", "https://")):
            raise UsageError(
                f"--url {item!r}: expected NAME=http(s)://..., NAME one of "
                f"{', '.join(SUBGRAPH_NAMES)}"
            )
        urls[name] = url
    try:
        sdl = compose(urls)
    except CompositionError as exc:
        raise UsageError(str(exc)) from None
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(sdl)
        print(f"medfed: wrote the supergraph of {', '.join(SUBGRAPH_NAMES)} to {args.output}")
    else:
        print(sdl, end="")
    return 0
