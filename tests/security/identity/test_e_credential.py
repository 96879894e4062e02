"""The e-credential claims (医保电子凭证): a patient token names the credential presented
(``mdtrt_cert_type``) and the assurance of the identity check (``acr``); both are required in
patient tokens, checked against their small sets, and `medfed token` mints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from security.identity import AuthenticationError, IssuerRegistry, verify_token
from security.identity.assurance import ORDER, Assurance, rank
from tests.support.identity import PERSON, make_world

PATIENT = {"role": "patient", "org": "330106", "purposes": ["PATIENT_ACCESS"], "person": PERSON}
DROP = object()


@pytest.fixture
def world(tmp_path: Path):
    return make_world(tmp_path / "data")


def _verify(world, **claims):
    token = world.demo_token(**claims)
    return verify_token(token, IssuerRegistry.load(world.issuers_file), audience="medfed")


def test_a_patient_token_carries_its_credential_and_assurance(world):
    principal = _verify(world, **PATIENT, mdtrt_cert_type="02", acr="real_name")
    assert (principal.cert_type, principal.assurance) == ("02", "real_name")


@pytest.mark.parametrize(
    "claims, claim",
    [
        ({"acr": "real_person"}, "mdtrt_cert_type"),  # no credential type
        ({"mdtrt_cert_type": "01"}, "acr"),  # no assurance
        ({"mdtrt_cert_type": "04", "acr": "real_person"}, "mdtrt_cert_type"),
        ({"mdtrt_cert_type": 1, "acr": "real_person"}, "mdtrt_cert_type"),
        ({"mdtrt_cert_type": "01", "acr": "face"}, "acr"),
    ],
)
def test_a_patient_token_without_a_valid_credential_is_refused(world, claims, claim):
    with pytest.raises(AuthenticationError) as caught:
        _verify(world, **PATIENT, **claims)
    assert caught.value.reason.startswith(f"claim '{claim}' ")


def test_other_tokens_carry_no_credential_type_but_may_carry_an_assurance(world):
    assert _verify(world).cert_type is None  # a clinician, with neither
    assert _verify(world, acr="real_name").assurance == "real_name"
    with pytest.raises(AuthenticationError, match="claim 'mdtrt_cert_type' is only for patient"):
        _verify(world, mdtrt_cert_type="01")
    with pytest.raises(AuthenticationError, match="claim 'acr'"):
        _verify(world, acr="gold")


def test_assurance_levels_are_ordered_weakest_first():
    assert ORDER == (Assurance.CREDENTIAL, Assurance.REAL_NAME, Assurance.REAL_PERSON)
    assert rank(None) == rank("unknown") == -1 < rank("credential") < rank("real_person")


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("MEDFED_CONFIG", "MEDFED_DATA_DIR", "MEDFED_DEV"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "medfed.toml"
    path.write_text(
        f'[server]\ndev = true\n\n[data]\ndir = "{(tmp_path / "data").as_posix()}"\n',
        encoding="utf-8",
    )
    return path


def _mint(config: Path, capsys, *args: str):
    code = main(["--config", str(config), "token", "--role", "patient", "--org", "330106", *args])
    out, err = capsys.readouterr()
    registry = IssuerRegistry.load(config.parent / "data" / "keys" / "issuers.toml")
    principal = verify_token(out.strip(), registry, audience="medfed") if code == 0 else None
    return code, principal, err


def test_medfed_token_mints_the_e_credential_and_real_person_by_default(config, capsys):
    code, principal, _ = _mint(config, capsys, "--person", PERSON)
    assert code == 0 and (principal.cert_type, principal.assurance) == ("01", "real_person")
    code, principal, _ = _mint(
        config, capsys, "--person", PERSON, "--cert-type", "03", "--acr", "credential"
    )
    assert code == 0 and (principal.cert_type, principal.assurance) == ("03", "credential")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cert-type", "9"], "--cert-type '9' is not 01"),
        (["--acr", "face"], "--acr 'face' is not one of credential, real_name, real_person"),
    ],
)
def test_medfed_token_refuses_a_bad_credential_in_one_line(config, capsys, args, message):
    code, _, err = _mint(config, capsys, "--person", PERSON, *args)
    assert code == 2 and message in err and err.count("\n") == 1
