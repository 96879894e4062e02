"""Peer answers as source rows: the same column names local rows have, so one Projection (and
its single enforcement point) serves both.

A peer returns values it has already decrypted and masked for our connection. Such a row
carries :data:`PEER_ORIGIN` under ``"_peer"``; ``enc(...)`` readers pass its values through
instead of decrypting. The marker is an object no database can return, so a local row can
never claim to be plain (fail closed: a local row's text in an ``_enc`` column does not open).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.graphql_peer.client import PEER_BAD_ANSWER, PeerError

PEER_ORIGIN = object()
_CST = timezone(timedelta(hours=8))
Row = dict[str, Any]


def is_peer_row(row: Row) -> bool:
    return row.get("_peer") is PEER_ORIGIN


def _date(v: Any) -> date | None:
    return None if v is None else date.fromisoformat(v)


def _datetime(v: Any) -> datetime | None:
    """A peer's time as a local source row holds one: China Standard Time without an offset
    (peers answer +08:00, older ones no offset), so its rows sort and page with ours."""
    if v is None:
        return None
    moment = datetime.fromisoformat(v)
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(_CST).replace(tzinfo=None)


def _fen(v: Any) -> int | None:
    try:
        return None if v is None else int((Decimal(str(v)) * 100).to_integral_value())
    except InvalidOperation:
        return None


def _codes(v: Any) -> str | None:
    return None if v is None else ",".join(v)


def _same(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class PeerKind:
    """One person-keyed list (or the identity) as the peer's schema names it."""

    typename: str  # the entity asked for in _entities: Person or CloudRecord
    path: str | None  # the list field on CloudRecord, None for the Person itself
    columns: dict[str, tuple[str, Callable[[Any], Any]]]  # GraphQL field -> (column, convert)
    required: tuple[str, ...]  # columns a row cannot go without (sort keys, merge keys)
    extra: str = ""  # sub-selections that are not plain fields

    def selection(self) -> str:
        fields = " ".join(c for c in self.columns if c != "referenceRange") + " " + self.extra
        if self.path is None:
            return f"... on Person {{ {fields} }}"
        return f"... on CloudRecord {{ {self.path}(first: 100) {{ nodes {{ {fields} }} }} }}"

    def rows(self, ref: str, entity: dict | None, source: str) -> list[Row]:
        if not entity:
            return []
        nodes = [entity] if self.path is None else (entity.get(self.path) or {}).get("nodes")
        out: list[Row] = []
        for node in nodes or []:
            if not isinstance(node, dict):
                continue
            row: Row = {
                column: convert(node.get(name)) for name, (column, convert) in self.columns.items()
            }
            if "referenceRange" in self.columns:
                rng = node.get("referenceRange") or {}
                row["ref_low"], row["ref_high"] = rng.get("low"), rng.get("high")
            # The pseudonym we asked for, whatever the node says: a peer cannot move a row
            # to another person, and a row of another person is dropped.
            if row.get("person_ref") not in (None, ref):
                continue
            row["person_ref"] = ref
            if any(row.get(c) is None for c in self.required):
                continue  # e.g. a sort key the peer withheld: the row cannot be placed
            row["_source"], row["_peer"] = source, PEER_ORIGIN
            out.append(row)
        return out


PERSONS = PeerKind(
    "Person",
    None,
    {
        "personId": ("person_ref", _same),
        "name": ("name_enc", _same),
        "idNumber": ("id_number_enc", _same),
        "gender": ("gender", _same),
        "birthDate": ("birth_date_enc", _same),
        "phone": ("phone_enc", _same),
        "address": ("address_enc", _same),
        "insuredRegion": ("insuplc_admdvs", _same),
    },
    ("insuplc_admdvs",),
)

ENROLLMENTS = PeerKind(
    "CloudRecord",
    "enrollments",
    {
        "enrollmentId": ("enrollment_id", _same),
        "insuranceType": ("insutype", _same),
        "poolingRegion": ("pool_admdvs", _same),
        "beginDate": ("begin_date", _date),
        "endDate": ("end_date", _date),
        "status": ("status", _same),
        "accountBalance": ("account_balance_fen", _fen),
    },
    ("enrollment_id", "begin_date", "status"),
)

VISITS = PeerKind(
    "CloudRecord",
    "visits",
    {
        "visitId": ("mdtrt_id", _same),
        "institutionCode": ("institution_code", _same),
        "visitType": ("visit_type", _same),
        "beginDate": ("begin_date", _date),
        "endDate": ("end_date", _date),
        "diagnosisCodes": ("diagnosis_codes", _codes),
        "diagnosisText": ("diagnosis_text_enc", _same),
        "doctorCode": ("doctor_code", _same),
        "insuredRegion": ("insuplc_admdvs", _same),
        "treatmentRegion": ("mdtrtarea_admvs", _same),
        "crossRegion": ("cross_region", _same),
    },
    ("mdtrt_id", "begin_date"),
)

SETTLEMENTS = PeerKind(
    "CloudRecord",
    "settlements",
    {
        "settlementId": ("setl_id", _same),
        "visitId": ("mdtrt_id", _same),
        "personId": ("person_ref", _same),
        "institutionCode": ("institution_code", _same),
        "medicalType": ("med_type", _same),
        "settledAt": ("setl_time", _datetime),
        "insuredRegion": ("insuplc_admdvs", _same),
        "treatmentRegion": ("mdtrtarea_admvs", _same),
        "total": ("total_fen", _fen),
        "inPolicy": ("in_policy_fen", _fen),
        "fundPay": ("fund_pay_fen", _fen),
        "accountPay": ("acct_pay_fen", _fen),
        "cashPay": ("cash_pay_fen", _fen),
        "crossProvince": ("cross_province", _same),
        "clearingStatus": ("clearing_status", _same),
        "clearingMonth": ("clearing_month", _same),
        "filingId": ("filing_id", _same),
    },
    ("setl_id", "setl_time"),
)

FILINGS = PeerKind(
    "CloudRecord",
    "filings",
    {
        "filingId": ("filing_id", _same),
        "personId": ("person_ref", _same),
        "name": ("name_enc", _same),
        "insuredRegion": ("insuplc_admdvs", _same),
        "destination": ("mdtrtarea_admvs", _same),
        "category": ("category", _same),
        "channel": ("channel", _same),
        "status": ("status", _same),
        "filedAt": ("filed_at", _datetime),
        "validFrom": ("valid_from", _date),
        "validUntil": ("valid_until", _date),
    },
    ("filing_id", "filed_at"),
)

TEST_RESULTS = PeerKind(
    "CloudRecord",
    "testResults",
    {
        "resultId": ("result_id", _same),
        "personId": ("person_ref", _same),
        "category": ("category", _same),
        "itemCode": ("item_code", _same),
        "itemName": ("item_name", _same),
        "value": ("value", _same),
        "unit": ("unit", _same),
        "referenceRange": ("ref_low", _same),
        "flag": ("flag", _same),
        "modality": ("modality", _same),
        "bodyPart": ("body_part", _same),
        "findings": ("findings_enc", _same),
        "impression": ("impression_enc", _same),
        "studyUid": ("study_uid", _same),
        "performingInstitutionCode": ("institution_code", _same),
        "visitId": ("mdtrt_id", _same),
        "orderingDoctor": ("ordering_doctor", _same),
        "collectedAt": ("collected_at", _datetime),
        "reportedAt": ("reported_at", _datetime),
    },
    ("result_id", "collected_at", "category"),
    extra="referenceRange { low high }",
)

# Loader tables that a peer can answer, by the local table name.
BY_TABLE = {
    "persons": PERSONS,
    "enrollments": ENROLLMENTS,
    "visits": VISITS,
    "settlements": SETTLEMENTS,
    "filings": FILINGS,
    "test_results": TEST_RESULTS,
}


async def fetch_rows(client: Any, kind: PeerKind, refs: list[str], remaining: float) -> list[Row]:
    """One ``_entities`` call for every person of the batch."""
    document = (
        "query MedfedPeer($r: [_Any!]!) { _entities(representations: $r) { "
        f"{kind.selection()} }} }}"
    )
    reps = [{"__typename": kind.typename, "personId": ref} for ref in refs]
    data = await client.query(document, {"r": reps}, remaining)
    entities = data.get("_entities") or []
    rows: list[Row] = []
    try:
        if not isinstance(entities, list):
            raise TypeError("_entities is not a list")
        for ref, entity in zip(refs, entities, strict=False):
            rows.extend(kind.rows(ref, entity, client.name))
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError):
        # Garbage of the right JSON type but the wrong shape: the peer's fault, named so.
        client.breaker.failure()
        raise PeerError(PEER_BAD_ANSWER, "rows of the wrong shape") from None
    return rows
