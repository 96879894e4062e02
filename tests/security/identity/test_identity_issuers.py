"""The trusted-issuers file, the [identity] settings and the demo issuer's key files: every
mistake is one line naming the key, and keys are owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.config import ConfigError, load_settings
from security.identity import (
    DEMO_ISSUER,
    DemoIssuerError,
    IssuerConfigError,
    IssuerRegistry,
    ensure_demo_issuer,
    load_identity_settings,
    open_demo_issuer,
)
from security.identity.demo_issuer import GENERATED_MARK


def _pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


ED = _pem(ed25519.Ed25519PrivateKey.generate())
P256 = _pem(ec.generate_private_key(ec.SECP256R1()))
P384 = _pem(ec.generate_private_key(ec.SECP384R1()))
PRIVATE = (
    ed25519.Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode("ascii")
)


SCOPE = (
    '[issuers.scope]\nroles = ["clinician"]\norgs = ["H33010600001"]\nperson = false\n'
    'purposes = ["TREATMENT"]\n'
)


def _issuer(
    key_lines: str,
    head: str = 'iss = "https://idp.example"\naudiences = ["medfed"]',
    scope: str = SCOPE,
) -> str:
    return f"[[issuers]]\n{head}\n\n[[issuers.keys]]\n{key_lines}\n\n{scope}"


def _key(alg: str = "EdDSA", pem: str = ED, kid: str = "k1") -> str:
    return f"kid = \"{kid}\"\nalg = \"{alg}\"\npublic_key = '''\n{pem}'''"


def test_a_good_file_lists_issuers_and_keys():
    text = _issuer(_key()) + _issuer(
        _key("ES256", P256, "k2"), 'iss = "https://b.example"\naudiences = ["medfed", "x"]'
    )
    registry = IssuerRegistry.from_toml(text)
    assert set(registry.issuers) == {"https://idp.example", "https://b.example"}
    assert registry.key_for("https://b.example", "k2").alg == "ES256"
    assert registry.key_for("https://b.example", "k1") is None
    assert registry.issuer("https://b.example").audiences == {"medfed", "x"}


BAD_FILES = {
    "not TOML": ("[[issuers]\n", "is not valid TOML"),
    "empty": ("", "issuers: must list at least one [[issuers]] table"),
    "unknown top-level key": (
        "trust_everyone = true\n" + _issuer(_key()),
        "trust_everyone: is not a setting",
    ),
    "missing iss": (
        _issuer(_key(), 'audiences = ["medfed"]'),
        "issuers[0].iss: must be a non-empty string",
    ),
    "empty audiences": (
        _issuer(_key(), 'iss = "https://a"\naudiences = []'),
        "issuers[0].audiences: must be a non-empty list",
    ),
    "no keys": (
        '[[issuers]]\niss = "https://a"\naudiences = ["medfed"]\n',
        "issuers[0].keys: must list at least one",
    ),
    "HS256": (_issuer(_key("HS256")), "issuers[0].keys[0].alg: 'HS256' is not supported"),
    "RS256": (_issuer(_key("RS256")), "issuers[0].keys[0].alg: 'RS256' is not supported"),
    "none": (_issuer(_key("none")), "issuers[0].keys[0].alg: 'none' is not supported"),
    "no kid": (
        _issuer('alg = "EdDSA"\npublic_key = "x"'),
        "issuers[0].keys[0].kid: must be a non-empty string",
    ),
    "unknown key setting": (
        _issuer(_key() + '\nsecret = "s"'),
        "issuers[0].keys[0].secret: is not a setting",
    ),
    "no public key": (
        _issuer('kid = "k"\nalg = "EdDSA"'),
        "issuers[0].keys[0].public_key: give exactly one of",
    ),
    "both public key forms": (
        _issuer(_key() + '\npublic_key_file = "k.pem"'),
        "issuers[0].keys[0].public_key: give exactly one of",
    ),
    "garbage key": (
        _issuer(_key(pem="hello")),
        "issuers[0].keys[0].public_key: is not a PEM public key",
    ),
    "private key instead of public": (
        _issuer(_key(pem=PRIVATE)),
        "issuers[0].keys[0].public_key: is not a PEM public key",
    ),
    "EdDSA with a P-256 key": (
        _issuer(_key("EdDSA", P256)),
        "issuers[0].keys[0].public_key: is not an Ed25519 key",
    ),
    "ES256 with an Ed25519 key": (
        _issuer(_key("ES256", ED)),
        "issuers[0].keys[0].public_key: is not a P-256 EC key",
    ),
    "ES256 with a P-384 key": (
        _issuer(_key("ES256", P384)),
        "issuers[0].keys[0].public_key: is not a P-256 EC key",
    ),
    "duplicate kid": (
        '[[issuers]]\niss = "https://a"\naudiences = ["m"]\n'
        f"[[issuers.keys]]\n{_key()}\n[[issuers.keys]]\n{_key()}\n",
        "issuers[0].keys[1].kid: 'k1' is listed twice",
    ),
    "duplicate issuer": (
        _issuer(_key()) + _issuer(_key()),
        "issuers[1].iss: 'https://idp.example' is listed twice",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_issuers_file_names_the_key(tmp_path: Path, case):
    text, expected = BAD_FILES[case]
    path = tmp_path / "issuers.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IssuerConfigError) as caught:
        IssuerRegistry.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message


def test_public_key_file_is_read_relative_to_the_issuers_file(tmp_path: Path):
    (tmp_path / "idp.pem").write_text(P256, encoding="ascii")
    path = tmp_path / "issuers.toml"
    path.write_text(_issuer('kid = "k"\nalg = "ES256"\npublic_key_file = "idp.pem"'))
    assert IssuerRegistry.load(path).key_for("https://idp.example", "k").alg == "ES256"
    (tmp_path / "idp.pem").unlink()
    with pytest.raises(
        IssuerConfigError,
        match=r"issuers\[0\]\.keys\[0\]\.public_key_file: "
        r".*idp.pem does not exist",
    ):
        IssuerRegistry.load(path)


def test_issuers_file_writable_by_others_is_refused(tmp_path: Path):
    path = tmp_path / "issuers.toml"
    path.write_text(_issuer(_key()))
    path.chmod(0o666)
    with pytest.raises(IssuerConfigError, match=r"writable by others .*chmod 644"):
        IssuerRegistry.load(path)


def test_missing_issuers_file_is_one_line(tmp_path: Path):
    with pytest.raises(IssuerConfigError, match="does not exist"):
        IssuerRegistry.load(tmp_path / "nope.toml")


# -- [identity] settings --------------------------------------------------------------------


def _identity(tmp_path: Path, table: str):
    config = tmp_path / "medfed.toml"
    config.write_text(f'[data]\ndir = "{tmp_path / "data"}"\n\n[identity]\n{table}\n')
    settings = load_settings(config, env={})
    return load_identity_settings(settings.config.identity, settings.data_dir)


def test_identity_defaults(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no medfed.toml here: every identity setting is a default
    settings = load_settings(data_dir=tmp_path / "d", env={})
    identity = load_identity_settings(settings.config.identity, settings.data_dir)
    assert identity.issuers_file == tmp_path / "d" / "keys" / "issuers.toml"
    assert (identity.audience, identity.leeway_seconds, identity.max_lifetime_seconds) == (
        "medfed",
        60,
        43200,
    )
    assert identity.uses_default_issuers_file


def test_identity_table_is_read_from_medfed_toml(tmp_path: Path):
    identity = _identity(
        tmp_path,
        'issuers_file = "{data_dir}/trust/idps.toml"\n'
        'audience = "medfed-prod"\nleeway_seconds = 30\n'
        "max_lifetime_seconds = 3600",
    )
    assert identity.issuers_file == tmp_path / "data" / "trust" / "idps.toml"
    assert not identity.uses_default_issuers_file
    assert (identity.audience, identity.leeway_seconds, identity.max_lifetime_seconds) == (
        "medfed-prod",
        30,
        3600,
    )


@pytest.mark.parametrize(
    "table, key, problem",
    [
        ("leeway_seconds = 600", "identity.leeway_seconds", "less than or equal to 300, not 600"),
        ('leeway_seconds = "60"', "identity.leeway_seconds", "a valid integer, not '60'"),
        ("leeway_seconds = true", "identity.leeway_seconds", "a valid integer, not True"),
        (
            "max_lifetime_seconds = 10",
            "identity.max_lifetime_seconds",
            "greater than or equal to 60",
        ),
        (
            "max_lifetime_seconds = 604800",
            "identity.max_lifetime_seconds",
            "less than or equal to 86400",
        ),
        ('audience = ""', "identity.audience", "at least 1 character"),
        ("issuers_file = 5", "identity.issuers_file", "a valid string, not 5"),
        ("trust_all = true", "identity.trust_all", "unknown key"),
    ],
)
def test_bad_identity_setting_names_the_key(tmp_path: Path, table, key, problem):
    with pytest.raises(ConfigError) as caught:
        _identity(tmp_path, table)
    assert caught.value.key == key
    assert str(caught.value) == f"{key}: {caught.value.problem}"
    assert problem in str(caught.value)
    assert _identity(tmp_path, "leeway_seconds = 300").leeway_seconds == 300  # the boundary


# -- the demo issuer's key files -----------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_key_and_issuers_file_are_owner_only(data_dir: Path):
    issuer = ensure_demo_issuer(data_dir)
    keys = data_dir / "keys"
    assert issuer.key_path == keys / "demo-issuer.pem"
    assert _mode(keys / "demo-issuer.pem") == 0o600
    assert _mode(keys / "issuers.toml") == 0o600
    assert _mode(keys) == 0o700
    assert sorted(p.name for p in keys.iterdir()) == ["demo-issuer.pem", "issuers.toml"]
    registry = IssuerRegistry.load(keys / "issuers.toml")
    key = registry.key_for(DEMO_ISSUER, "demo-1")
    assert key.alg == "EdDSA" and key.public_key == issuer.private_key.public_key()
    assert registry.issuer(DEMO_ISSUER).audiences == {"medfed"}


def test_demo_key_is_made_once_and_reused(data_dir: Path):
    first = ensure_demo_issuer(data_dir)
    again = ensure_demo_issuer(data_dir)
    assert first.public_pem() == again.public_pem()


def test_demo_key_readable_by_others_is_refused(data_dir: Path):
    issuer = ensure_demo_issuer(data_dir)
    issuer.key_path.chmod(0o644)
    with pytest.raises(DemoIssuerError, match=r"readable by others .*chmod 600"):
        open_demo_issuer(data_dir)


def test_generated_issuers_file_follows_a_new_demo_key(data_dir: Path):
    old = ensure_demo_issuer(data_dir)
    old.key_path.unlink()
    new = ensure_demo_issuer(data_dir)
    assert new.public_pem() != old.public_pem()
    registry = IssuerRegistry.load(data_dir / "keys" / "issuers.toml")
    assert registry.key_for(DEMO_ISSUER, "demo-1").public_key == new.private_key.public_key()


def test_hand_edited_issuers_file_is_left_alone(data_dir: Path):
    ensure_demo_issuer(data_dir)
    path = data_dir / "keys" / "issuers.toml"
    edited = path.read_text().replace(GENERATED_MARK + "\n", "# ours now\n")
    path.write_text(edited)
    (data_dir / "keys" / "demo-issuer.pem").unlink()
    ensure_demo_issuer(data_dir)
    assert path.read_text() == edited
