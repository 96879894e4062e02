"""Output enums where inputs are enums: a filing's category and channel, an audit event's kind,
outcome and purpose, so a page's generated types name every value it may meet."""

from __future__ import annotations

from datetime import date, datetime

from connectors.sql.models import platform
from gateway import cli
from tests.support.federation import Federation, gql, make_id_number

FILINGS = "{ me { cloudRecord { filings { nodes { filingId category channel } } } } }"
EVENTS = """query($f: AuditEventFilter) { auditEvents(filter: $f, first: 50) {
  nodes { kind outcome purpose } } }"""


async def _filing(fed: Federation, ref: str, fid: str, category: str, channel: str) -> None:
    await fed.insert(
        "platform",
        platform.Filing,
        [
            dict(
                filing_id=fid,
                person_ref=ref,
                id_number_bidx="b",
                name_enc=fed.enc("platform", "filings", "name_enc", fid, "张三"),
                insuplc_admdvs="330106",
                mdtrtarea_admvs="370000",
                category=category,
                channel=channel,
                status="ACTIVE",
                filed_at=datetime(2020, 3, 1, 9),
                valid_from=date(2020, 3, 1),
                valid_until=None,
            )
        ],
    )


async def test_filing_category_and_channel_are_enums(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    await _filing(fed, ref, "F330000000001", "RELOCATED_RETIREE", "MINI_PROGRAM")
    # A value outside the vocabulary (a row from before platform_0003, or a source's mistake)
    # is answered as null, not as an error that would cost the patient the whole list.
    await _filing(fed, ref, "F330000000002", "RETIRED_RESETTLED", "FAX")
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, FILINGS)
    assert "errors" not in body
    nodes = {n["filingId"]: n for n in body["data"]["me"]["cloudRecord"]["filings"]["nodes"]}
    assert nodes["F330000000001"] == {
        "filingId": "F330000000001",
        "category": "RELOCATED_RETIREE",
        "channel": "MINI_PROGRAM",
    }
    assert (nodes["F330000000002"]["category"], nodes["F330000000002"]["channel"]) == (None, None)


def test_the_printed_sdl_names_the_enums(tmp_path):
    out = tmp_path / "schema.graphql"
    assert cli.main(["schema", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for line in (
        "category: FilingCategory",
        "channel: FilingChannel",
        "kind: AuditKind",
        "outcome: AuditOutcome",
        "purpose: PurposeOfUse",
    ):
        assert line in text, line
    assert "RETIRED_RESETTLED" not in text


async def test_audit_kind_outcome_and_purpose_are_enums_in_and_out(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    app = fed.app()
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        await gql(c, "{ me { name } }")
    async with fed.client(app, fed.token("clinician", "H22010200005"), "TREATMENT") as c:
        await gql(c, "query($p: ID!) { person(personId: $p) { name } }", {"p": ref})
    async with fed.client(app, fed.token("auditor", "330000"), "AUDIT") as c:
        every = (await gql(c, EVENTS))["data"]["auditEvents"]["nodes"]
        assert {"kind": "QUERY", "outcome": "OK", "purpose": "PATIENT_ACCESS"} in every
        assert {"kind": "QUERY", "outcome": "DENIED", "purpose": "TREATMENT"} in every
        denied = (await gql(c, EVENTS, {"f": {"outcome": "DENIED", "purpose": "TREATMENT"}}))[
            "data"
        ]["auditEvents"]["nodes"]
        assert denied and all(n["outcome"] == "DENIED" for n in denied)
        # A value outside the enum is now refused where it was once an empty page.
        body = await gql(c, EVENTS, {"f": {"outcome": "FINE"}})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
