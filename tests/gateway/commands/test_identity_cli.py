"""``medfed token``: mint with the real command line, then verify the printed token (also
through the auth middleware); bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.cli import main
from security.identity import (
    DEFAULT_PURPOSES,
    IssuerRegistry,
    Purpose,
    Role,
    verify_token,
)
from tests.support.identity import CLINIC, PERSON, World, make_world


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    """An isolated configuration: its own data directory and no medfed.toml from the repo."""
    monkeypatch.chdir(tmp_path)
    for name in ("MEDFED_CONFIG", "MEDFED_DATA_DIR", "MEDFED_DEV"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "medfed.toml"
    path.write_text(
        f'[server]\ndev = true\n\n[data]\ndir = "{(tmp_path / "data").as_posix()}"\n',
        encoding="utf-8",
    )
    return path


def _mint(config: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), "token", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _registry(config: Path) -> IssuerRegistry:
    return IssuerRegistry.load(config.parent / "data" / "keys" / "issuers.toml")


def test_round_trip_prints_only_the_token(config, capsys):
    code, out, err = _mint(config, capsys, "--role", "clinician", "--org", CLINIC)
    assert (code, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    principal = verify_token(out.strip(), _registry(config), audience="medfed")
    assert principal.role is Role.CLINICIAN and principal.org == CLINIC
    assert principal.purposes == {Purpose.TREATMENT}
    assert principal.sub == f"demo-clinician-{CLINIC}"
    remaining = principal.expires_at.timestamp() - time.time()
    assert 3500 < remaining <= 3600


def test_options_end_up_in_the_token(config, capsys):
    code, out, _ = _mint(
        config,
        capsys,
        "--role",
        "insurance_agency",
        "--org",
        "330100",
        "--purposes",
        "settlement, emergency",
        "--ttl",
        "30m",
        "--sub",
        "agent-007",
    )
    assert code == 0
    principal = verify_token(out.strip(), _registry(config), audience="medfed")
    assert principal.purposes == {Purpose.SETTLEMENT, Purpose.EMERGENCY}
    assert principal.sub == "agent-007"
    assert 1700 < principal.expires_at.timestamp() - time.time() <= 1800


def test_patient_token_links_the_person_pseudonym(config, capsys):
    code, out, _ = _mint(
        config, capsys, "--role", "patient", "--org", "330106", "--person", PERSON.upper()
    )
    assert code == 0
    principal = verify_token(out.strip(), _registry(config), audience="medfed")
    assert principal.person_ref == PERSON
    assert principal.purposes == {Purpose.PATIENT_ACCESS}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_its_default_purposes(config, capsys, role):
    extra = ["--person", PERSON] if role is Role.PATIENT else []
    code, out, err = _mint(config, capsys, "--role", role.value, "--org", "330100", *extra)
    assert code == 0, err
    principal = verify_token(out.strip(), _registry(config), audience="medfed")
    assert principal.purposes == DEFAULT_PURPOSES[role]


async def test_minted_token_opens_the_gateway(config, capsys, tmp_path):
    code, out, _ = _mint(config, capsys, "--role", "pharmacist", "--org", "P33010600007")
    assert code == 0
    world: World = make_world(tmp_path / "data")  # trusts the key the command made
    response = await world.request(
        "POST", "/graphql", json={}, headers={"Authorization": f"Bearer {out.strip()}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "pharmacist"


def test_configured_audience_and_lifetime_are_honoured(config, capsys):
    config.write_text(
        config.read_text() + '\n[identity]\naudience = "medfed-staging"\n'
        "max_lifetime_seconds = 1800\n"
    )
    code, out, _ = _mint(config, capsys, "--role", "auditor", "--org", "330000", "--ttl", "900")
    assert code == 0
    assert verify_token(out.strip(), _registry(config), audience="medfed-staging")
    code, out, err = _mint(config, capsys, "--role", "auditor", "--org", "330000", "--ttl", "1h")
    assert (code, out) == (2, "")
    assert "identity.max_lifetime_seconds = 1800" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--role", "nurse", "--org", CLINIC], "--role 'nurse' is not one of patient"),
        (["--role", "clinician", "--org", "Hangzhou"], "--org 'HANGZHOU' is neither"),
        (
            ["--role", "clinician", "--org", CLINIC, "--ttl", "soon"],
            "--ttl 'soon' is not a lifetime",
        ),
        (["--role", "clinician", "--org", CLINIC, "--ttl", "0"], "--ttl '0' is not a lifetime"),
        (["--role", "clinician", "--org", CLINIC, "--ttl", "13h"], "is longer than the gateway"),
        (
            ["--role", "clinician", "--org", CLINIC, "--purposes", "TREATMENT,GOSSIP"],
            "--purposes 'GOSSIP' is not one of",
        ),
        (
            ["--role", "clinician", "--org", CLINIC, "--purposes", " , "],
            "--purposes must name at least one purpose",
        ),
        (["--role", "patient", "--org", "330106"], "--person is required in a patient token"),
        (
            ["--role", "patient", "--org", "330106", "--person", "abc"],
            "--person must be a personId pseudonym",
        ),
        (
            ["--role", "patient", "--org", "330106", "--person", "33010619900101123X"],
            "never an ID number",
        ),
        (
            ["--role", "patient", "--org", "330106", "--person", PERSON, "--purposes", "TREATMENT"],
            "--purposes of a patient token may only be PATIENT_ACCESS",
        ),
        (
            ["--role", "clinician", "--org", CLINIC, "--person", PERSON],
            "--person is only for patient tokens",
        ),
        (
            ["--role", "clinician", "--org", CLINIC, "--sub", "330106199001011234"],
            "--sub looks like a citizen ID number",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(config, capsys, args, message):
    code, out, err = _mint(config, capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith("medfed: ") and err.count("\n") == 1
    assert message in err


def test_unsafe_demo_key_is_a_one_line_error(config, capsys):
    assert _mint(config, capsys, "--role", "admin", "--org", "330000")[0] == 0
    key = config.parent / "data" / "keys" / "demo-issuer.pem"
    key.chmod(0o644)
    code, out, err = _mint(config, capsys, "--role", "admin", "--org", "330000")
    assert (code, out) == (2, "")
    assert f"chmod 600 {key}" in err and err.count("\n") == 1


def test_outside_dev_mode_it_refuses_unless_told_and_never_writes_trust(config, capsys):
    issuers = config.parent / "data" / "keys" / "issuers.toml"
    config.write_text(config.read_text().replace("dev = true", "dev = false"))
    code, out, err = _mint(config, capsys, "--role", "clinician", "--org", CLINIC)
    assert (code, out) == (2, "") and "--allow-outside-dev" in err
    assert not issuers.exists()  # refusing made no trusted demo issuer
    # Told explicitly it mints, and still trusts nothing by itself: no issuers file appears.
    code, out, err = _mint(
        config, capsys, "--allow-outside-dev", "--role", "clinician", "--org", CLINIC
    )
    assert code == 2 and "does not exist" in err and not issuers.exists()
    # With an issuers file made in dev mode (positive control) it prints a token, untouched.
    config.write_text(config.read_text().replace("dev = false", "dev = true"))
    assert _mint(config, capsys, "--role", "clinician", "--org", CLINIC)[0] == 0
    before = issuers.read_bytes()
    config.write_text(config.read_text().replace("dev = true", "dev = false"))
    code, out, err = _mint(
        config, capsys, "--allow-outside-dev", "--role", "clinician", "--org", CLINIC
    )
    assert code == 0 and out.count(".") == 2 and issuers.read_bytes() == before
