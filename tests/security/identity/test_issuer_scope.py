"""``[issuers.scope]``: strict parsing (each mistake one line naming the key, e.g.
``issuers[0].scope.roles: ...``) and what a scope covers, boundaries pinned."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from security.identity import ClaimError, IssuerConfigError, IssuerRegistry, Purpose, Role
from security.identity.demo_issuer import DEMO_SCOPE
from security.identity.scope import parse_scope
from tests.support.identity import public_pem

PEM = public_pem(ed25519.Ed25519PrivateKey.generate())
GOOD = {
    "roles": '["clinician", "pharmacist"]',
    "orgs": '["H33010600001"]',
    "regions": '["330100"]',
    "person": "false",
    "purposes": '["TREATMENT"]',
}


def _file(scope: dict[str, str] | None) -> str:
    text = (
        '[[issuers]]\niss = "https://idp.example"\naudiences = ["medfed"]\n\n'
        f"[[issuers.keys]]\nkid = \"k\"\nalg = \"EdDSA\"\npublic_key = '''\n{PEM}'''\n"
    )
    if scope is not None:
        text += "\n[issuers.scope]\n" + "".join(f"{k} = {v}\n" for k, v in scope.items())
    return text


def test_a_good_scope_is_read():
    scope = IssuerRegistry.from_toml(_file(GOOD)).issuer("https://idp.example").scope
    assert scope.roles == {Role.CLINICIAN, Role.PHARMACIST}
    assert scope.purposes == {Purpose.TREATMENT} and scope.person is False


def _without(key: str) -> dict[str, str]:
    return {k: v for k, v in GOOD.items() if k != key}


BAD = {
    "no scope": (None, "issuers[0].scope: is required"),
    "unknown key": ({**GOOD, "admin": "true"}, "issuers[0].scope.admin: is not a setting"),
    "no roles": (_without("roles"), "issuers[0].scope.roles: is required"),
    "empty roles": ({**GOOD, "roles": "[]"}, "issuers[0].scope.roles: must be a non-empty list"),
    "bad role": ({**GOOD, "roles": '["doctor"]'}, "issuers[0].scope.roles: 'doctor' is not one"),
    "bad purpose": (
        {**GOOD, "purposes": '["HEALING"]'},
        "issuers[0].scope.purposes: 'HEALING' is not one",
    ),
    "no purposes": (_without("purposes"), "issuers[0].scope.purposes: is required"),
    "no person": (_without("person"), "issuers[0].scope.person: is required"),
    "person not a boolean": (
        {**GOOD, "person": '"yes"'},
        "issuers[0].scope.person: must be true or false",
    ),
    "person without patients": (
        {**GOOD, "person": "true"},
        "issuers[0].scope.person: must be true exactly when roles include patient",
    ),
    "patients without person": (
        {**GOOD, "roles": '["patient"]'},
        "issuers[0].scope.person: must be true exactly when roles include patient",
    ),
    "neither orgs nor regions": (
        {k: v for k, v in GOOD.items() if k not in ("orgs", "regions")},
        "issuers[0].scope.orgs: give orgs and/or regions",
    ),
    "both empty": ({**GOOD, "orgs": "[]", "regions": "[]"}, "issuers[0].scope.orgs: names no"),
    "bad org": ({**GOOD, "orgs": '["X1"]'}, "issuers[0].scope.orgs: 'X1' is not an organisation"),
    "bad region": ({**GOOD, "regions": '["33"]'}, "issuers[0].scope.regions: '33' is not a six"),
    "orgs not a list": ({**GOOD, "orgs": '"H33010600001"'}, "issuers[0].scope.orgs: must be a"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_scope_is_one_line_naming_its_key(case):
    scope, expected = BAD[case]
    with pytest.raises(IssuerConfigError) as caught:
        IssuerRegistry.from_toml(_file(scope), source="issuers.toml")
    assert str(caught.value).startswith("issuers.toml: " + expected), str(caught.value)
    assert "\n" not in str(caught.value)


def _scope(**changes: object):
    raw: dict[str, object] = {
        "roles": ["clinician"],
        "regions": ["330100"],
        "person": False,
        "purposes": ["TREATMENT"],
    }
    return parse_scope({**raw, **changes})


@pytest.mark.parametrize(
    "org, covered",
    [
        ("H33010600001", True),  # an institution inside the city
        ("330106", True),  # a district of the city
        ("330100", True),  # the city itself
        ("330000", False),  # the province is not inside the city
        ("H33020300002", False),  # Ningbo: another city of the province
        ("H37010200003", False),
    ],
)
def test_a_region_covers_what_lies_inside_it(org, covered):
    assert _scope().covers_org(org) is covered


def test_exact_orgs_and_the_any_org_wildcard():
    exact = _scope(orgs=["H37010200003"], regions=[])
    assert exact.covers_org("H37010200003") and not exact.covers_org("H37010200004")
    assert _scope(orgs=["*"], regions=[]).covers_org("H65010100001")


def test_check_names_the_first_claim_outside_the_scope():
    scope = _scope(purposes=["TREATMENT", "EMERGENCY"])
    ok = {"role": Role.CLINICIAN, "org": "H33010600001", "has_person": False}
    scope.check("iss", purposes={Purpose.TREATMENT, Purpose.EMERGENCY}, **ok)  # within
    for change, claim in (
        ({"role": Role.AUDITOR}, "role"),
        ({"org": "H37010200003"}, "org"),
        ({"purposes": {Purpose.TREATMENT, Purpose.AUDIT}}, "purposes"),
        ({"has_person": True}, "person"),
    ):
        args = {**ok, "purposes": {Purpose.TREATMENT}, **change}
        with pytest.raises(ClaimError) as caught:
            scope.check("iss", **args)
        assert caught.value.claim == claim


def test_the_demo_scope_is_the_demos_and_survives_its_own_file():
    assert DEMO_SCOPE.person and DEMO_SCOPE.roles == set(Role)
    assert not DEMO_SCOPE.any_org and not DEMO_SCOPE.covers_org("H82000000001")
    assert all(DEMO_SCOPE.covers_org(o) for o in ("H33010600001", "370102", "100000", "110000"))
    text = _file(None) + "\n" + DEMO_SCOPE.toml()
    assert IssuerRegistry.from_toml(text).issuer("https://idp.example").scope == DEMO_SCOPE
