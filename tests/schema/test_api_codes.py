"""Codes come with their names (one `codes` lookup) and institutions with their address and
phone, so the pages stop keeping code lists of their own."""

from __future__ import annotations

from connectors.sql.models import directory
from tests.support.federation import Federation, gql, make_id_number

CODES = "query($k: CodeKind!, $c: [String!]!) { codes(kind: $k, codes: $c) { kind code label } }"


async def _world(data_dir):
    fed = await Federation(data_dir).setup()
    await fed.insert(
        "directory",
        directory.CodeLabel,
        [
            dict(kind="REGION", code="330100", label="杭州市"),
            dict(kind="REGION", code="330000", label="浙江省"),
            dict(kind="DIAGNOSIS", code="I10", label="原发性高血压"),
            # the same code under another kind must not answer for this one
            dict(kind="DRUG", code="330100", label="not a region"),
        ],
    )
    await fed.insert(
        "directory",
        directory.Institution,
        [
            dict(
                code="H33010800099",
                name="杭州滨江示范医院",
                level="SECONDARY",
                kind="HOSPITAL",
                region="330108",
                internet_hospital=False,
                address="浙江省杭州市滨江区长河路1号",
                phone="0571-80000099",
            )
        ],
    )
    return fed


async def test_codes_are_named_in_the_order_asked_unknown_ones_null(data_dir):
    fed = await _world(data_dir)
    ref = await fed.add_person(make_id_number(), "张三")
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, CODES, {"k": "REGION", "c": ["330100", "999999", "330000", "330100"]})
        assert "errors" not in body
        assert body["data"]["codes"] == [
            {"kind": "REGION", "code": "330100", "label": "杭州市"},
            {"kind": "REGION", "code": "999999", "label": None},
            {"kind": "REGION", "code": "330000", "label": "浙江省"},
        ]
        body = await gql(c, CODES, {"k": "DIAGNOSIS", "c": ["I10", "330100"]})
        assert [x["label"] for x in body["data"]["codes"]] == ["原发性高血压", None]
        body = await gql(c, CODES, {"k": "INSTITUTION", "c": ["H33010800099"]})
        assert body["data"]["codes"][0]["label"] == "杭州滨江示范医院"


async def test_codes_take_at_most_a_hundred(data_dir):
    fed = await _world(data_dir)
    async with fed.client(fed.app(), fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        ok = await gql(c, CODES, {"k": "REGION", "c": [str(330000 + i) for i in range(100)]})
        assert "errors" not in ok and len(ok["data"]["codes"]) == 100
        body = await gql(c, CODES, {"k": "REGION", "c": [str(330000 + i) for i in range(101)]})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert body["errors"][0]["extensions"]["problems"][0]["path"] == ["codes"]


async def test_institutions_carry_address_and_phone(data_dir):
    fed = await _world(data_dir)
    query = '{ institutions(region: "330108", kind: HOSPITAL) { nodes { code address phone } } }'
    async with fed.client(fed.app(), fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        body = await gql(c, query)
    assert "errors" not in body
    nodes = {n["code"]: n for n in body["data"]["institutions"]["nodes"]}
    assert nodes["H33010800099"] == {
        "code": "H33010800099",
        "address": "浙江省杭州市滨江区长河路1号",
        "phone": "0571-80000099",
    }
