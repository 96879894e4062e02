"""JSON logs in every process: each standard-error line of a served gateway, of its uvicorn
workers and of uvicorn itself parses as JSON with time, level, request id and trace id; the
access line names method, route, status, duration, role and organisation."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from gateway.edge.logs import JsonFormatter
from gateway.telemetry.logs import log_config
from tests.support.federation import Federation, make_id_number
from tests.support.served import serve

EVERY_LINE = {"time", "level", "logger", "message", "request_id", "trace_id", "pid"}
ACCESS = {"method", "path", "status", "duration_ms", "role", "org"}


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    await fed.add_person(make_id_number(seq=321), "李四")
    return fed


def ask(url: str, token: str, probe: str = "/nowhere") -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=20) as client:
        return [
            client.post("/graphql", json={"query": "{ __typename }"}),
            client.get("/healthz"),
            client.get(probe),  # a path no route has: logged as (unmatched)
        ]


def check(records: list[dict], answered: list[httpx.Response]) -> list[dict]:
    assert records, "the process logged nothing on standard error"
    for record in records:
        assert set(record) >= EVERY_LINE, record
    access = [r for r in records if r["logger"] == "medfed.access"]
    by_id = {r["request_id"]: r for r in access}
    for response in answered:
        line = by_id[response.headers["x-request-id"]]
        assert set(line) >= ACCESS, line
        assert line["status"] == response.status_code
        assert isinstance(line["duration_ms"], float | int)
    graphql = by_id[answered[0].headers["x-request-id"]]
    assert (graphql["method"], graphql["path"]) == ("POST", "/graphql")
    assert (graphql["role"], graphql["org"]) == ("settlement_center", "330000")
    assert by_id[answered[2].headers["x-request-id"]]["path"] == "(unmatched)"
    return access


@pytest.mark.slow
async def test_a_served_process_logs_only_json_lines(fed):
    secret = make_id_number(seq=987)
    with serve(fed.data_dir) as served:
        answered = ask(served.url, fed.token("settlement_center", "330000"), f"/p/{secret}")
    records = served.records()
    check(records, answered)
    uvicorn = [r for r in records if r["logger"].startswith("uvicorn")]
    assert any("Uvicorn running" in r["message"] for r in uvicorn), uvicorn
    assert secret not in served.stderr.read_text()  # the probed path is not logged


@pytest.mark.slow
async def test_every_worker_logs_json_lines(fed):
    with serve(fed.data_dir, "--workers", "2") as served:
        served.wait_for_workers(2)
        answered = [
            response
            for _ in range(4)
            for response in ask(served.url, fed.token("settlement_center", "330000"))
        ]
        parent = served.proc.pid
    records = served.records()
    access = check(records, answered)
    workers = {r["pid"] for r in records if r["pid"] != parent}
    assert len(workers) >= 2, "both workers log"
    assert {r["pid"] for r in access} <= workers  # requests are logged by the workers
    started = [r for r in records if r["message"].startswith("Started server process")]
    assert {r["pid"] for r in started} == workers


def test_lines_outside_a_request_still_carry_both_keys():
    # Positive control for the key check: a bare record formats with nulls, not omissions.
    record = logging.LogRecord("medfed.test", logging.INFO, __file__, 1, "hello", None, None)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] is None and line["trace_id"] is None
    assert set(line) >= EVERY_LINE


def test_the_uvicorn_config_routes_its_loggers_to_the_json_handler():
    config = log_config("INFO")
    logging.config.dictConfig(config)
    try:
        stream = io.StringIO()
        root = logging.getLogger()
        root.handlers[0].setStream(stream)
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://x")
        assert json.loads(stream.getvalue())["message"] == "Uvicorn running on http://x"
    finally:
        logging.getLogger().handlers.clear()


async def test_the_audit_writer_child_logs_json_under_the_gateway_set_up(fed):
    import os
    import subprocess
    import sys

    from security.audit.writer_child import LENGTH
    from tests.support import REPO

    config = json.dumps(
        {
            "path": str(fed.data_dir / "gateway.db"),
            "full_sync": False,
            "checkpoint_every": 100,
            "derive": None,
        }
    )
    child = "import sys; from security.audit.writer_child import main; sys.exit(main(sys.argv[1:]))"
    outputs = {}
    for setup in ("gateway.telemetry.logs:configure_json_logging", ""):
        env = {**os.environ, "MEDFED_LOG_SETUP": setup}
        request = b"Z" + b"{}"  # an unknown request: the child logs its failure
        done = subprocess.run(  # noqa: ASYNC221 (the test waits for the child on purpose)
            [sys.executable, "-c", child, config],
            input=LENGTH.pack(len(request)) + request,
            capture_output=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
        outputs[setup] = [line for line in done.stderr.decode().splitlines() if line]
    json_lines = [
        json.loads(line) for line in outputs["gateway.telemetry.logs:configure_json_logging"]
    ]
    assert [r["message"] for r in json_lines] == ["audit writer: request failed"]
    assert set(json_lines[0]) >= EVERY_LINE and json_lines[0]["exception"] == "ValueError"
    # Control: without the set-up the child's plain format is not JSON.
    with pytest.raises(json.JSONDecodeError):
        json.loads(outputs[""][0])


async def test_a_refused_request_logs_the_route_not_the_path(fed):
    from tests.support.logs import capture_logs

    probe = "/person/" + make_id_number(seq=432)
    with capture_logs() as logs:
        async with fed.client(fed.app(), None) as c:
            assert (await c.get(probe)).status_code == 401
            assert (await c.post("/graphql", json={"query": "{ __typename }"})).status_code == 401
    refused = [r.getMessage() for r in logs.records if r.getMessage().startswith("refused")]
    assert refused == ["refused GET (unmatched): " + refused[0].split(": ", 1)[1], refused[1]]
    assert refused[1].startswith("refused POST /graphql: ")  # control: a route is named
    ours = [r.getMessage() for r in logs.records if r.name.startswith("medfed")]
    assert not [m for m in ours if probe.rsplit("/", 1)[1] in m]  # the test client's own is not
