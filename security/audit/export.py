"""Export the audit log as FHIR R4 AuditEvent resources or as JSON lines.

Both read the stored leaves, so an export says exactly what the log proves. JSON lines are
the leaves themselves (``{"event", "index", "logged_at"}``, one per line): each line's
RFC 6962 leaf hash is ``SHA-256(0x00 ‖ line)``, checkable against an inclusion proof.
FHIR output is a Bundle (type ``collection``) of AuditEvent resources, one per event, with
persons as entities identified by their pseudonym and every field touched as a detail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from security.audit.models import AuditEvent

EVENTS = AuditEvent.__table__
CHUNK = 2000
MEDFED = "https://medfed.local/fhir"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
# The nearest HL7 purpose of use for each of ours; ours stays beside it, exact.
PURPOSE_OF_USE = {
    "TREATMENT": "TREAT",
    "EMERGENCY": "ETREAT",
    "PATIENT_ACCESS": "PATRQT",
    "SETTLEMENT": "HPAYMT",
    "FUND_SUPERVISION": "HOPERAT",
    "RESEARCH": "HRESCH",
    "UNDERWRITING": "COVERAGE",
    "AUDIT": "HSYSADMIN",
}
# AuditEvent.outcome: 0 success, 4 minor failure (refused or partial), 8 serious failure.
OUTCOME = {"OK": "0", "PARTIAL": "4", "DENIED": "4", "UNAUTHENTICATED": "4", "ERROR": "8"}
ACTION = {"QUERY": "R", "MUTATION": "U", "AUTHENTICATION": "E"}


async def leaves(
    engine: AsyncEngine, since: datetime | None = None, until: datetime | None = None
) -> AsyncIterator[bytes]:
    """Stored leaves in log order, optionally only those logged in [since, until)."""
    after = -1
    while True:
        query = select(EVENTS.c.idx, EVENTS.c.entry).where(EVENTS.c.idx > after)
        if since is not None:
            query = query.where(EVENTS.c.created_at >= since)
        if until is not None:
            query = query.where(EVENTS.c.created_at < until)
        async with engine.connect() as conn:
            rows = (await conn.execute(query.order_by(EVENTS.c.idx).limit(CHUNK))).all()
        for idx, entry in rows:
            after = idx
            yield bytes(entry)
        if len(rows) < CHUNK:
            return


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _details(person: Mapping[str, Any]) -> list[dict[str, Any]]:
    details = []
    for kind in ("read", "masked", "denied"):
        for f in person.get(kind, ()):
            details.append(
                {
                    "type": kind,
                    "valueString": f"{f['field']} (class {f.get('class')}, level {f.get('level')})",
                }
            )
    if person.get("relation"):
        details.append({"type": "relation", "valueString": person["relation"]})
    return details


def fhir_audit_event(index: int, event: Mapping[str, Any], logged_at: str) -> dict[str, Any]:
    """One logged event as a FHIR R4 AuditEvent resource."""
    kind = event.get("kind", "QUERY")
    principal = event.get("principal")
    auth = kind == "AUTHENTICATION"
    agent: dict[str, Any] = {"requestor": True}
    if principal:
        agent["who"] = {
            "identifier": {"system": principal["issuer"], "value": principal["sub"]},
            "display": f"{principal['role']} at {principal['org']}",
        }
        agent["role"] = [{"coding": [_coding(f"{MEDFED}/role", principal["role"])]}]
        agent["altId"] = principal["org"]
    else:
        agent["who"] = {"display": "unauthenticated caller"}
    if event.get("client"):
        agent["network"] = {"address": event["client"], "type": "2"}  # 2 = IP address
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"medfed-audit-{index}",
        "type": _coding(DCM, "110114", "User Authentication")
        if auth
        else _coding(
            "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"
        ),
        "subtype": [_coding(f"{MEDFED}/event-kind", kind)],
        "action": ACTION.get(kind, "E"),
        "recorded": event["time"],
        "outcome": OUTCOME.get(event.get("outcome", ""), "8"),
        "outcomeDesc": event.get("outcome", ""),
        "agent": [agent],
        "source": {
            "site": "medfed",
            "observer": {"display": "medfed gateway"},
            "type": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/security-source-type", "3", "Web Server"
                )
            ],
        },
        "entity": [],
    }
    purpose = event.get("purpose")
    if purpose:
        codings = [_coding(f"{MEDFED}/purpose-of-use", purpose)]
        if purpose in PURPOSE_OF_USE:
            codings.insert(0, _coding(ACT_REASON, PURPOSE_OF_USE[purpose]))
        resource["purposeOfEvent"] = [{"coding": codings}]
        agent["purposeOfUse"] = [{"coding": codings}]
    for person in event.get("persons") or ():
        entity: dict[str, Any] = {
            "what": {
                "identifier": {
                    "system": f"{MEDFED}/personId",
                    "value": person.get("personId") or "unknown",
                }
            },
            "type": _coding(
                "http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"
            ),
            "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
        }
        details = _details(person)
        if details:
            entity["detail"] = details
        resource["entity"].append(entity)
    log_details = [
        {"type": "logIndex", "valueString": str(index)},
        {"type": "loggedAt", "valueString": logged_at},
        {"type": "requestId", "valueString": event.get("requestId", "")},
        {"type": "breakGlass", "valueString": str(bool(event.get("breakGlass"))).lower()},
    ]
    operation = event.get("operation") or {}
    if operation.get("sha256"):
        log_details.append({"type": "operationSha256", "valueString": operation["sha256"]})
    sources = event.get("sources") or {}
    for name in sources.get("touched", ()):
        log_details.append({"type": "sourceTouched", "valueString": name})
    for name in sources.get("failed", ()):
        log_details.append({"type": "sourceFailed", "valueString": name})
    request = event.get("request") or {}
    if request.get("reason"):
        log_details.append({"type": "reason", "valueString": request["reason"]})
    resource["entity"].append(
        {
            "what": {"display": operation.get("name") or request.get("path") or "graphql"},
            "type": _coding(
                "http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"
            ),
            "detail": log_details,
        }
    )
    if event.get("breakGlass"):
        resource["subtype"].append(_coding(f"{MEDFED}/event-kind", "BREAK_GLASS"))
    return resource


def entry_parts(entry: bytes) -> tuple[int, dict[str, Any], str]:
    raw = orjson.loads(entry)
    return raw["index"], raw["event"], raw["logged_at"]
