"""The ``professional`` claim: which doctor or pharmacist a token stands for. Only an issuer
whose scope has ``professionals = true`` may assert it, only in a clinician's (D…) or a
pharmacist's (Y…) token; anything else is a 401 naming the claim, and the app is never run."""

from __future__ import annotations

import pytest

from security.identity import ClaimError, IssuerConfigError, IssuerRegistry, Role
from security.identity.scope import parse_scope
from tests.support.identity import ES_ISSUER, World, make_world

DOCTOR = "D330106000123"
PHARMACIST = "YH33010600001001"


@pytest.fixture
def world(data_dir) -> World:
    return make_world(data_dir)


async def _get(world: World, token: str):
    return await world.request("GET", "/graphql", headers={"Authorization": f"Bearer {token}"})


async def test_a_trusted_issuer_asserts_the_doctor_and_the_pharmacist(world):
    response = await _get(world, world.demo_token(professional=DOCTOR))
    assert response.status_code == 200, response.text
    assert response.json()["professional"] == DOCTOR
    pharmacist = world.demo_token(role="pharmacist", professional=PHARMACIST)
    response = await _get(world, pharmacist)
    assert response.status_code == 200, response.text
    assert response.json()["professional"] == PHARMACIST
    # Without the claim the token is still good; it just names no professional.
    response = await _get(world, world.demo_token())
    assert response.status_code == 200 and response.json()["professional"] is None


async def test_an_issuer_not_trusted_with_professionals_may_not_assert_one(world):
    # The hospital IdP of the test world has no `professionals = true` in its scope.
    response = await _get(world, world.es_token())
    assert response.status_code == 200, response.text  # positive control: its plain token
    response = await _get(world, world.es_token(professional=DOCTOR))
    assert response.status_code == 401
    message = response.json()["errors"][0]["message"]
    assert "claim 'professional' may not be asserted by issuer" in message
    assert ES_ISSUER in message and "professionals = true" in message
    assert len(world.calls) == 1  # the refused token never reached the app


@pytest.mark.parametrize(
    "role, org, code, problem",
    [
        ("clinician", "H33010600001", PHARMACIST, "is not a doctor code"),
        ("pharmacist", "H33010600001", DOCTOR, "is not a pharmacist code"),
        ("clinician", "H33010600001", "D1234567", "is not a doctor code"),  # 7 after D: short
        ("clinician", "H33010600001", "D" + "1" * 16, "is not a doctor code"),  # 16: long
        ("clinician", "H33010600001", 330106000123, "is not a doctor code"),
        ("insurance_agency", "330100", DOCTOR, "is only for clinician and pharmacist tokens"),
    ],
)
async def test_a_code_of_the_wrong_kind_or_form_is_refused(world, role, org, code, problem):
    purposes = ["FUND_SUPERVISION"] if role == "insurance_agency" else ["TREATMENT"]
    token = world.demo_token(role=role, org=org, purposes=purposes, professional=code)
    response = await _get(world, token)
    assert response.status_code == 401
    message = response.json()["errors"][0]["message"]
    assert message.startswith("claim 'professional' ") and problem in message, message
    assert world.calls == []


@pytest.mark.parametrize("code", ["D12345678", "D" + "A" * 15])
async def test_the_code_lengths_at_the_boundaries_are_accepted(world, code):
    response = await _get(world, world.demo_token(professional=code))
    assert response.status_code == 200, response.text


def _scope(**changes: object):
    raw: dict[str, object] = {
        "roles": ["clinician", "pharmacist"],
        "orgs": ["H33010600001"],
        "person": False,
        "purposes": ["TREATMENT"],
    }
    return parse_scope({**raw, **changes})


def test_professionals_is_false_unless_the_scope_says_so():
    assert _scope().professionals is False
    assert _scope(professionals=True).professionals is True
    ok = {"role": Role.CLINICIAN, "org": "H33010600001", "purposes": set(), "has_person": False}
    _scope(professionals=True).check("iss", has_professional=True, **ok)
    with pytest.raises(ClaimError) as caught:
        _scope().check("iss", has_professional=True, **ok)
    assert caught.value.claim == "professional"


def test_a_bad_professionals_setting_is_one_line_naming_it():
    from tests.security.identity.test_issuer_scope import GOOD, _file

    for value, expected in (
        ('"yes"', "issuers[0].scope.professionals: must be true or false"),
        ("true", None),
    ):
        text = _file({**GOOD, "professionals": value})
        if expected is None:
            assert IssuerRegistry.from_toml(text).issuer("https://idp.example").scope.professionals
            continue
        with pytest.raises(IssuerConfigError) as caught:
            IssuerRegistry.from_toml(text, source="issuers.toml")
        assert str(caught.value).startswith("issuers.toml: " + expected)
    # An issuer of agencies only has no professionals to assert.
    agencies = {**GOOD, "roles": '["insurance_agency"]', "professionals": "true"}
    with pytest.raises(IssuerConfigError, match="professionals: is only for an issuer of"):
        IssuerRegistry.from_toml(_file(agencies), source="issuers.toml")


def test_medfed_token_mints_a_professionals_token_and_refuses_a_bad_code(
    tmp_path, monkeypatch, capsys
):
    from gateway.cli import main
    from security.identity import verify_token

    monkeypatch.chdir(tmp_path)
    for name in ("MEDFED_CONFIG", "MEDFED_DATA_DIR", "MEDFED_DEV"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "medfed.toml"
    config.write_text(
        f'[server]\ndev = true\n\n[data]\ndir = "{(tmp_path / "data").as_posix()}"\n',
        encoding="utf-8",
    )
    base = ["--config", str(config), "token", "--role", "clinician", "--org", "H33010600001"]
    assert main([*base, "--professional", DOCTOR.lower()]) == 0
    out, _ = capsys.readouterr()
    registry = IssuerRegistry.load(tmp_path / "data" / "keys" / "issuers.toml")
    assert verify_token(out.strip(), registry, audience="medfed").professional == DOCTOR
    assert main([*base, "--professional", PHARMACIST]) == 2
    _, err = capsys.readouterr()
    assert "--professional 'YH33010600001001' is not a doctor code" in err
