"""Every table of medfed.toml: a good value is read as typed, and each wrong type, range or
unknown key stops loading with one line naming the key (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, MedfedConfig, load_settings
from security.audit.cosign import load_or_create_witness
from security.audit.signer import load_or_create_signer, verifier_key_string

# table -> (a good table body, how its value reads back, [(bad line, key named), ...])
CASES: dict[str, tuple[str, object, list[tuple[str, str]]]] = {
    "server": (
        'host = "0.0.0.0"\nport = 9000\ndev = true',
        lambda c: (c.server.host, c.server.port, c.server.dev) == ("0.0.0.0", 9000, True),
        [
            ('port = "80"', "server.port"),
            ("port = 0", "server.port"),
            ("port = 65536", "server.port"),
            ("dev = 1", "server.dev"),
            ('host = ""', "server.host"),
            ('tls_cert = "c.pem"', "server.tls_key"),
            ("colour = 1", "server.colour"),
        ],
    ),
    "data": (
        'dir = "/srv/medfed"\ndatabase_url = "postgresql+asyncpg://pg/medfed"',
        lambda c: c.data.database_url == "postgresql+asyncpg://pg/medfed",
        [("dir = 5", "data.dir"), ('database_url = "mysql://x"', "data.database_url")],
    ),
    "gateway": (
        "deadline_seconds = 2\nstatistics_deadline_seconds = 600",
        lambda c: (c.gateway.deadline_seconds, c.gateway.statistics_deadline_seconds) == (2, 600),
        [
            ("deadline_seconds = 0", "gateway.deadline_seconds"),
            ("deadline_seconds = 121", "gateway.deadline_seconds"),
            ('deadline_seconds = "5"', "gateway.deadline_seconds"),
            ("statistics_deadline_seconds = 601", "gateway.statistics_deadline_seconds"),
            ("peer_deadline_share = 1.01", "gateway.peer_deadline_share"),
            ("deadline = 5", "gateway.deadline"),
        ],
    ),
    "health": (
        "retry_initial_seconds = 1\nretry_max_seconds = 1",
        lambda c: c.health.retry_initial_seconds == c.health.retry_max_seconds == 1,
        [
            ("retry_initial_seconds = 40", "health.retry_initial_seconds"),
            ("probe_timeout_seconds = 0", "health.probe_timeout_seconds"),
            ("probe_timeout_seconds = 3601", "health.probe_timeout_seconds"),
            ("retry_max_seconds = true", "health.retry_max_seconds"),
            ("retries = 3", "health.retries"),
        ],
    ),
    "limits": (
        "max_depth = 20\nmax_json_depth = 512\nprincipal_rate = 0.5\n"
        'redis_url = "redis://127.0.0.1:6379/0"',
        lambda c: (c.limits.operation_limits().max_depth, c.limits.max_json_depth) == (20, 512),
        [
            ("max_depth = 0", "limits.max_depth"),
            ('max_cost = "a lot"', "limits.max_cost"),
            ("max_json_depth = 1", "limits.max_json_depth"),
            ("max_json_depth = 513", "limits.max_json_depth"),
            ("principal_rate = 0", "limits.principal_rate"),
            ("org_burst = -5", "limits.org_burst"),
            ("rate_limits = 0", "limits.rate_limits"),
            ('redis_url = "http://cache"', "limits.redis_url"),
            ("max_fields = 3", "limits.max_fields"),
        ],
    ),
    "cors": (
        'origins = ["https://App.example.cn/"]',
        lambda c: c.cors.origins == ["https://app.example.cn"],
        [
            ('origins = ["*"]', "cors.origins"),
            ('origins = "https://a.cn"', "cors.origins"),
            ("origins = [1]", "cors.origins[0]"),
            ("methods = []", "cors.methods"),
        ],
    ),
    "telemetry": (
        'metrics_listen = "127.0.0.1:9464"\ntraces = "console"\nsample_ratio = 0',
        lambda c: c.telemetry.metrics_listen == ("127.0.0.1", 9464),
        [
            ('metrics_listen = "9464"', "telemetry.metrics_listen"),
            ('traces = "jaeger"', "telemetry.traces"),
            ("sample_ratio = 1.5", "telemetry.sample_ratio"),
            ('otlp_endpoint = "collector:4318"', "telemetry.otlp_endpoint"),
            ("tracing = true", "telemetry.tracing"),
            ('trusted_trace_callers = ["router.internal"]', "telemetry.trusted_trace_callers"),
        ],
    ),
    "audit": (
        "checkpoint_every = 100000\nmax_batch = 1\nenabled = false\n"
        '[audit.alerts]\nvolume_persons = 2\nhours = "08:00-18:00"\n'
        "[audit.reconcile]\nafter_seconds = 1",
        lambda c: (c.audit.log.checkpoint_every, c.audit.alerts.volume_persons) == (100000, 2),
        [
            ('checkpoint_every = "often"', "audit.checkpoint_every"),
            ("checkpoint_every = 100001", "audit.checkpoint_every"),
            ("max_batch = -5", "audit.max_batch"),
            ("checkpoint_seconds = 0", "audit.checkpoint_seconds"),
            ('enabled = "no"', "audit.enabled"),
            ("checkpoint_dir = 3", "audit.checkpoint_dir"),
            ("often = true", "audit.often"),
            ('[audit.alerts]\nvolume_persons = "many"', "audit.alerts.volume_persons"),
            ("[audit.alerts]\nbreak_glass = false", "audit.alerts.break_glass"),
            ('[audit.alerts]\nhours = "9-5pm"', "audit.alerts.hours"),
            ('[audit.alerts]\ntimezone = "Mars/Olympus"', "audit.alerts.timezone"),
            ("[audit.reconcile]\nafter_seconds = 0.5", "audit.reconcile.after_seconds"),
            (
                '[[audit.witnesses]]\nname = "w"\nurl = "http://w.example"\nkey = "x"',
                "audit.witnesses[0].url",
            ),
            (
                '[[audit.witnesses]]\nname = "w"\nurl = "https://w.example"\nkey = "x"',
                "audit.witnesses[0].key",
            ),
        ],
    ),
    "identity": (
        'issuers_file = "{data_dir}/idps.toml"\naudience = "prod"\nleeway_seconds = 0',
        lambda c: (c.identity.audience, c.identity.leeway_seconds) == ("prod", 0),
        [
            ("leeway_seconds = 301", "identity.leeway_seconds"),
            ("max_lifetime_seconds = 59", "identity.max_lifetime_seconds"),
            ('audience = ""', "identity.audience"),
            ("trust_all = true", "identity.trust_all"),
        ],
    ),
    "witness": (
        "",  # filled in by the test: a real verifier key
        lambda c: c.witness.name == "gw-b" and len(c.witness.logs) == 1,
        [
            ('name = "gw b"', "witness.name"),
            ('name = "gw-b"', "witness.logs"),
            ('[[witness.logs]]\norigin = "o"\nkey = "k"', "witness.logs[0].key"),
            ("port = 1", "witness.port"),
        ],
    ),
    "recognition": (
        '[[recognition.items]]\ncode = "718-7"\nmin_level = "PRIMARY"\nvalidity_days = 7',
        lambda c: c.recognition.items[0].validity_days == 7,
        [
            (
                '[[recognition.items]]\ncode = "x"\nmin_level = "BEST"\nvalidity_days = 1',
                "recognition.items[0].min_level",
            ),
            (
                '[[recognition.items]]\ncode = "x"\nmin_level = "PRIMARY"\nvalidity_days = 0',
                "recognition.items[0].validity_days",
            ),
            (
                '[[recognition.items]]\ncode = "x"\nmin_level = "PRIMARY"',
                "recognition.items[0].validity_days",
            ),
        ],
    ),
    "documents": (
        'trusted_only_roles = ["researcher", "commercial_insurer"]',
        lambda c: c.documents.trusted_only_roles == ["researcher", "commercial_insurer"],
        [
            ('trusted_only_roles = ["hacker"]', "documents.trusted_only_roles[0]"),
            ('trusted_only_roles = "researcher"', "documents.trusted_only_roles"),
        ],
    ),
    "pages": (
        'oidc_issuer = "https://idp.example/realm"\nclient_id = "medfed-pages"',
        lambda c: c.pages.issuer_origin == "https://idp.example",
        [
            ('oidc_issuer = "http://idp.example"\nclient_id = "x"', "pages.oidc_issuer"),
            ('oidc_issuer = "https://idp.example"', "pages.client_id"),
            ('client_id = "x"', "pages.oidc_issuer"),
            ('scope = ""', "pages.scope"),
        ],
    ),
    "supervision": (
        "scan_interval_seconds = 0\nscan_lookback_days = 3660",
        lambda c: (
            (c.supervision.scan_interval_seconds, c.supervision.scan_lookback_days) == (0, 3660)
        ),
        [
            ("scan_interval_seconds = -1", "supervision.scan_interval_seconds"),
            ("scan_lookback_days = 0", "supervision.scan_lookback_days"),
            ("scan_lookback_days = 1.5", "supervision.scan_lookback_days"),
            ("scan_every = 1", "supervision.scan_every"),
        ],
    ),
    "crypto": (
        'profile = "national"\nkek_file = "/keys/kek.json"',
        lambda c: (c.crypto.profile, c.crypto.kek_file) == ("national", "/keys/kek.json"),
        [
            ('profile = "quantum"', "crypto.profile"),
            ('kek_file = ""', "crypto.kek_file"),
            ("hsm = true", "crypto.hsm"),
        ],
    ),
    "sealing": (
        'partners_file = "/etc/medfed/partners.toml"',
        lambda c: c.sealing.partners_file == "/etc/medfed/partners.toml",
        [("partners_file = 1", "sealing.partners_file"), ("file = 'x'", "sealing.file")],
    ),
    "records": (
        'origin = "records.a.example"\ncheckpoint_seconds = 0.5\ncheckpoint_dir = "rl"',
        lambda c: (
            (c.records.origin, c.records.checkpoint_seconds, c.records.checkpoint_dir)
            == ("records.a.example", 0.5, "rl")
        ),
        [
            ('origin = "two words"', "records.origin"),
            ("checkpoint_seconds = 0", "records.checkpoint_seconds"),
            (
                '[[records.witnesses]]\nname = "b"\nurl = "http://peer.example"\nkey = "k"',
                "records.witnesses[0].url",
            ),
            ("witness = 1", "records.witness"),
        ],
    ),
    "federation": (
        '[[federation.routers]]\nissuer = "https://idp.example"\nsub = "router"',
        lambda c: c.federation.router_principals == {("https://idp.example", "router")},
        [
            ('[[federation.routers]]\nissuer = "a"', "federation.routers[0].sub"),
            ('[[federation.routers]]\nissuer = "a"\nsub = ""', "federation.routers[0].sub"),
            ('[[federation.routers]]\nissuer = "a"\nsub = "b"\nc = 1', "federation.routers[0].c"),
            ('routers = "x"', "federation.routers"),
        ],
    ),
}


def test_every_table_of_the_model_has_its_case():
    assert set(CASES) | {"sources"} == set(MedfedConfig.model_fields)


def _load(tmp_path: Path, table: str, body: str, env: dict[str, str] | None = None):
    path = tmp_path / "medfed.toml"
    # An array of tables or a sub-table in the body keeps its own header.
    head = "" if body.startswith("[") else f"[{table}]\n"
    path.write_text(f"{head}{body}\n", encoding="utf-8")
    return load_settings(path, data_dir=tmp_path / "data", env=env or {})


def _witness_body(tmp_path: Path) -> str:
    verifier = load_or_create_signer(tmp_path / "other", "gw-a.example/audit").verifier()
    return (
        f'name = "gw-b"\n[[witness.logs]]\norigin = "gw-a"\nkey = "{verifier_key_string(verifier)}"'
    )


@pytest.mark.parametrize("table", sorted(CASES))
def test_a_good_table_is_read_typed(tmp_path, table):
    body, reads, _ = CASES[table]
    if table == "witness":
        body = _witness_body(tmp_path)
    assert reads(_load(tmp_path, table, body).config)


@pytest.mark.parametrize(
    ("table", "line", "key"),
    [(table, line, key) for table, (_, _, bad) in sorted(CASES.items()) for line, key in bad],
)
def test_a_wrong_value_names_its_key_in_one_line(tmp_path, table, line, key):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, table, line)
    assert refused.value.key == key, str(refused.value)
    assert str(refused.value).startswith(f"{key}: ") and "\n" not in str(refused.value)


def test_a_witness_key_that_parses_is_accepted(tmp_path):
    key = load_or_create_witness(tmp_path / "w", "w.example").key.vkey()
    body = f'[[audit.witnesses]]\nname = "w"\nurl = "https://w.example/"\nkey = "{key}"'
    witnesses = _load(tmp_path, "audit", body).config.audit.witnesses
    assert [(w.name, w.url) for w in witnesses] == [("w", "https://w.example")]


# -- environment overrides: MEDFED_<TABLE>__<KEY>, nested as deep as the tables ------------


def test_nested_environment_overrides_merge_into_the_file(tmp_path):
    body = "max_batch = 10\n[audit.alerts]\nvolume_persons = 5\nprobing_denials = 4"
    env = {"MEDFED_AUDIT__ALERTS__VOLUME_PERSONS": "7", "MEDFED_LIMITS__MAX_DEPTH": "6"}
    config = _load(tmp_path, "audit", body, env).config
    assert config.audit.alerts.volume_persons == 7  # the environment wins
    assert config.audit.alerts.probing_denials == 4  # the file's sibling stays
    assert config.audit.max_batch == 10
    assert config.limits.max_depth == 6
    assert _load(tmp_path, "audit", body).config.audit.alerts.volume_persons == 5  # control


def test_an_environment_list_is_json(tmp_path):
    env = {"MEDFED_CORS__ORIGINS": '["https://a.example.cn"]', "MEDFED_SERVER__DEV": "true"}
    config = _load(tmp_path, "server", "", env).config
    assert config.cors.origins == ["https://a.example.cn"] and config.server.dev is True


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MEDFED_AUDIT__MAX_BATCH": "-1"}, "MEDFED_AUDIT__MAX_BATCH"),
        ({"MEDFED_AUDIT__MAX_BACH": "5"}, "MEDFED_AUDIT__MAX_BACH"),
        ({"MEDFED_AUDIT__ALERTS__HOURS": "never"}, "MEDFED_AUDIT__ALERTS__HOURS"),
        ({"MEDFED_TELEMETRY__SAMPLE_RATIO": "half"}, "MEDFED_TELEMETRY__SAMPLE_RATIO"),
        ({"MEDFED_PORT": "eighty"}, "MEDFED_PORT"),
        ({"MEDFED_SERVER__PORT": "0"}, "MEDFED_SERVER__PORT"),
    ],
)
def test_a_wrong_environment_value_names_the_variable(tmp_path, env, named):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, "server", "", env)
    assert refused.value.key == named


def test_a_wrong_file_value_is_named_by_its_key_even_with_the_environment_set(tmp_path):
    env = {"MEDFED_AUDIT__ENABLED": "false"}
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, "audit", "max_batch = 0", env)
    assert refused.value.key == "audit.max_batch"


def test_the_environment_can_correct_the_file(tmp_path):
    settings = _load(tmp_path, "audit", "max_batch = 0", {"MEDFED_AUDIT__MAX_BATCH": "5"})
    assert settings.config.audit.max_batch == 5


def test_with_tables_checks_like_the_file(tmp_path):
    settings = _load(tmp_path, "audit", "max_batch = 10")
    changed = settings.with_tables(audit={"alerts": {"volume_persons": 3}})
    assert (changed.config.audit.alerts.volume_persons, changed.config.audit.max_batch) == (3, 10)
    with pytest.raises(ConfigError) as refused:
        settings.with_tables(audit={"alerts": {"volume_persons": "3"}})
    assert refused.value.key == "audit.alerts.volume_persons"
