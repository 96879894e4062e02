"""Configuration mistakes stop start-up with one line naming the key, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings
from tests.support import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "medfed.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ('[[sources]]\nname = "b"\nkind = "bureau"\n', "sources[0].region", "province code"),
        (
            '[[sources]]\nname = "b"\nkind = "bureau"\nregion = "330100"\n',
            "sources[0].region",
            "province-level",
        ),
        (
            '[[sources]]\nname = "b"\nkind = "bureau"\nregion = "990000"\n',
            "sources[0].region",
            "GB/T 2260",
        ),
        (
            '[[sources]]\nname = "h"\nkind = "hospital"\ninstitution = "H3301060001"\n',
            "sources[0].institution",
            "institution code",
        ),
        ('[[sources]]\nname = "x"\nkind = "clinic"\n', "sources[0].kind", "is not one of"),
        ('[[sources]]\nname = "Bad Name"\nkind = "platform"\n', "sources[0].name", "lowercase"),
        (
            '[[sources]]\nname = "p"\nkind = "platform"\n'
            '[[sources]]\nname = "p"\nkind = "platform"\n',
            "sources[1].name",
            "configured twice",
        ),
        (
            '[[sources]]\nname = "p"\nkind = "platform"\ncolour = "red"\n',
            "sources[0].colour",
            "unknown key",
        ),
        ('[[sources]]\nname = "p"\n', "sources[0].kind", "is not one of"),
        (
            '[[sources]]\nname = "b"\nkind = "bureau"\nregion = 330000\n',
            "sources[0].region",
            "a valid string",
        ),
        (
            '[[sources]]\nname = "d"\nkind = "directory"\n'
            '[[sources]]\nname = "e"\nkind = "directory"\n',
            "sources",
            "only one institution directory",
        ),
        (
            '[[sources]]\nname = "p"\nkind = "peer"\nurl = "https://peer.example/graphql"\n'
            'token_file = "t"\npurpose = "TREATMENT"\nretries = 9\n',
            "sources[0].retries",
            "less than or equal to 5",
        ),
        (
            '[[sources]]\nname = "p"\nkind = "peer"\nurl = "https://peer.example/graphql"\n'
            'token_file = "t"\npurpose = "MARKETING"\n',
            "sources[0].purpose",
            "TREATMENT",
        ),
        (
            '[[sources]]\nname = "p"\nkind = "peer"\nurl = "https://peer.example/graphql"\n'
            'token_file = "missing.token"\npurpose = "TREATMENT"\n',
            "sources[0].token_file",
            "does not exist",
        ),
        (
            '[[sources]]\nname = "p"\nkind = "platform"\nurl = "mysql://x"\n',
            "sources[0].url",
            "supported database URL",
        ),
        ("[server]\nport = 70000\n", "server.port", "outside 1-65535"),
        ("[server\n", "medfed.toml", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, toml, key, words):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, toml), env={})
    assert err.value.key.endswith(key)
    assert words in str(err.value)


def test_good_sources_are_resolved(tmp_path):
    (tmp_path / "t").write_text("token")
    path = write(
        tmp_path,
        '[[sources]]\nname = "bureau-330000"\nkind = "bureau"\nregion = "330000"\n'
        '[[sources]]\nname = "h"\nkind = "hospital"\ninstitution = "H33010600001"\n'
        '[[sources]]\nname = "p"\nkind = "peer"\nurl = "http://127.0.0.1:9/graphql"\n'
        'token_file = "t"\npurpose = "TREATMENT"\nretries = 5\n',
    )
    settings = load_settings(path, data_dir=tmp_path / "d", env={})
    assert [s.name for s in settings.sources] == ["bureau-330000", "h"]
    assert settings.source("h").region == "330106"
    (peer,) = settings.peers
    assert (peer.token_file, peer.retries) == (tmp_path / "t", 5)


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[server]\nport = 8000\n[[sources]]\nname = "p"\nkind = "platform"\n')
    settings = load_settings(
        path, env={"MEDFED_PORT": "9001", "MEDFED_DATA_DIR": "/srv/medfed", "MEDFED_DEV": "false"}
    )
    assert (settings.port, str(settings.data_dir), settings.dev) == (9001, "/srv/medfed", False)
    assert settings.source("p").url == "sqlite+aiosqlite:////srv/medfed/sources/p.db"
    with pytest.raises(ConfigError, match="MEDFED_PORT"):
        load_settings(path, env={"MEDFED_PORT": "eighty"})
    with pytest.raises(ConfigError, match="MEDFED_DEV"):
        load_settings(path, env={"MEDFED_DEV": "maybe"})


def test_one_postgres_database_holds_a_schema_per_source(tmp_path):
    path = write(
        tmp_path, '[[sources]]\nname = "bureau-330000"\nkind = "bureau"\nregion = "330000"\n'
    )
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    settings = load_settings(path, env={"MEDFED_DATABASE_URL": url})
    spec = settings.source("bureau-330000")
    assert (spec.url, spec.schema) == (url, "bureau_330000")
    assert settings.gateway_spec.schema == "medfed_gateway"


def test_cli_prints_one_line_without_traceback(tmp_path):
    path = write(tmp_path, '[[sources]]\nname = "b"\nkind = "bureau"\nregion = "33"\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(path), "db", "current"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "medfed: sources[0].region: '33' is not a six-digit GB/T 2260 region code"
    ]
    assert "Traceback" not in result.stderr


def test_missing_keyring_with_existing_data_refuses_to_start(tmp_path):
    from gateway.startup import open_keyring
    from security.crypto import KeyRingError

    path = write(tmp_path, '[[sources]]\nname = "d"\nkind = "directory"\n')
    settings = load_settings(path, data_dir=tmp_path / "data", env={})
    db = tmp_path / "data" / "sources" / "d.db"
    db.parent.mkdir(parents=True)
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE institutions (code TEXT)")
        conn.execute("INSERT INTO institutions VALUES ('H33010600001')")
    with pytest.raises(KeyRingError, match="missing; restore it from backup"):
        open_keyring(settings, create=True)
    assert not (tmp_path / "data" / "keys" / "keyring.json").exists()


@pytest.mark.parametrize(
    "routers",
    ['"x"', '[{issuer = "a"}]', '[{issuer = "a", sub = ""}]', '[{issuer = "a", sub = "b", c = 1}]'],
)
def test_federation_routers_must_each_name_an_issuer_and_a_sub(tmp_path, routers):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f"[federation]\nrouters = {routers}\n"), env={})
    assert caught.value.key.startswith("federation.routers")


def test_federation_routers_are_read_as_issuer_and_sub(tmp_path):
    text = '[[federation.routers]]\nissuer = "https://idp.example"\nsub = "auth0|router"\n'
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.config.federation.router_principals == {("https://idp.example", "auth0|router")}
