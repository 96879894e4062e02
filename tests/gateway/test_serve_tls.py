"""``medfed serve`` TLS settings: a mistake stops start-up with one line naming the flag or
the ``[server]`` key, before anything is served, and TLS is never silently dropped."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest

from gateway import cli
from gateway.commands.serve import _tls_options
from gateway.config import ConfigError, load_settings
from tests.support.tls import make_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "serve-ca")
    server = ca.issue(folder, "server", server=True)
    junk = folder / "junk.pem"
    junk.write_text("not a certificate\n")
    return {"ca": ca.cert, "cert": server.cert, "key": server.key, "junk": junk}


def args(**flags: object) -> argparse.Namespace:
    return argparse.Namespace(**{"tls_cert": None, "tls_key": None, "tls_client_ca": None, **flags})


def settings(tmp_path: Path, server: str = "") -> object:
    path = tmp_path / "medfed.toml"
    path.write_text(f"[server]\n{server}", encoding="utf-8")
    return load_settings(path, env={})


def test_no_tls_is_plain_http(tmp_path):
    assert _tls_options(args(), settings(tmp_path)) == {}


def test_flags_pass_uvicorn_the_files_and_a_client_ca_requires_certificates(tmp_path, pki):
    plain = _tls_options(
        args(tls_cert=str(pki["cert"]), tls_key=str(pki["key"])), settings(tmp_path)
    )
    assert plain == {"ssl_certfile": str(pki["cert"]), "ssl_keyfile": str(pki["key"])}
    mutual = _tls_options(
        args(tls_cert=str(pki["cert"]), tls_key=str(pki["key"]), tls_client_ca=str(pki["ca"])),
        settings(tmp_path),
    )
    assert mutual["ssl_ca_certs"] == str(pki["ca"])
    assert mutual["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_the_config_file_keys_are_used_and_a_flag_overrides_its_key(tmp_path, pki):
    configured = settings(
        tmp_path,
        f'tls_cert = "{pki["cert"]}"\ntls_key = "{pki["key"]}"\ntls_client_ca = "{pki["junk"]}"\n',
    )
    with pytest.raises(cli.UsageError, match=r"^server\.tls_client_ca: "):
        _tls_options(args(), configured)
    options = _tls_options(args(tls_client_ca=str(pki["ca"])), configured)
    assert options["ssl_ca_certs"] == str(pki["ca"])
    assert options["ssl_certfile"] == str(pki["cert"])


@pytest.mark.parametrize(
    ("server", "key", "words"),
    [
        ('tls_cert = "a.pem"\n', "server.tls_key", "set together"),
        ('tls_key = "a.pem"\n', "server.tls_cert", "set together"),
        ('tls_client_ca = "ca.pem"\n', "server.tls_client_ca", "needs tls_cert"),
        ("tls_cert = 3\ntls_key = 'k'\n", "server.tls_cert", "a valid string"),
    ],
)
def test_half_a_tls_setting_names_the_key(tmp_path, server, key, words):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, server)
    assert err.value.key == key and words in str(err.value)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--tls-cert", "{missing}", "--tls-key", "{key}"], "--tls-cert: cannot read"),
        (["--tls-cert", "{cert}", "--tls-key", "{missing}"], "--tls-key: cannot read"),
        (["--tls-cert", "{cert}"], "--tls-key: required with --tls-cert"),
        (["--tls-client-ca", "{ca}"], "--tls-cert: required with --tls-client-ca"),
        (
            ["--tls-cert", "{cert}", "--tls-key", "{key}", "--tls-client-ca", "{missing}"],
            "--tls-client-ca: cannot read",
        ),
        (["--tls-cert", "{junk}", "--tls-key", "{key}"], "--tls-cert/--tls-key: "),
        (
            ["--tls-cert", "{cert}", "--tls-key", "{key}", "--tls-client-ca", "{junk}"],
            "--tls-client-ca: ",
        ),
    ],
)
def test_bad_files_stop_serve_with_one_line_naming_the_flag(tmp_path, capsys, pki, flags, named):
    values = {**{k: str(v) for k, v in pki.items()}, "missing": str(tmp_path / "nope.pem")}
    config = tmp_path / "medfed.toml"
    config.write_text("[server]\n", encoding="utf-8")
    code = cli.main(
        [
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "serve",
            *(f.format(**values) for f in flags),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"medfed: {named}") and err.count("\n") == 1, err
    assert not (tmp_path / "data").exists()  # stopped before migrating anything
