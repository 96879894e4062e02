"""The audit event of one request: who, why, which persons, which fields, what came of it.

An event never holds a data value or a plain identifier: persons appear only by their
pseudonym (the blind index, the API's ``personId``), the operation only by its name and the
SHA-256 of its text (variables may hold identifiers, so they are never logged), errors only
by their codes, and a failed authentication never by anything from its token.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

EVENT_VERSION = 1
# The data class of the audit log itself: reading it is logged like reading a record, so
# the auditors are audited too ("who watched the watchers").
AUDIT_CLASS = "audit"

# Codes that mean "the caller may not have this": the request counts as a denial.
DENIAL_CODES = frozenset({"FORBIDDEN_FIELD", "FORBIDDEN", "PRIVACY_BUDGET_EXHAUSTED"})
# Codes that are answers, not failures of the gateway.
ANSWER_CODES = DENIAL_CODES | {
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "SOURCE_UNAVAILABLE",
    "IDEMPOTENCY_KEY_REUSED",
    "DATA_INTEGRITY",
}


class Outcome(StrEnum):
    OK = "OK"
    PARTIAL = "PARTIAL"  # some fields denied or some sources failed, the rest answered
    DENIED = "DENIED"  # nothing personal was answered and something was refused
    ERROR = "ERROR"
    UNAUTHENTICATED = "UNAUTHENTICATED"


class Kind(StrEnum):
    QUERY = "QUERY"
    MUTATION = "MUTATION"
    AUTHENTICATION = "AUTHENTICATION"
    PRIVACY_SPEND = "PRIVACY_SPEND"  # epsilon charged to a partner's privacy budget
    EXTRACT = "EXTRACT"  # a de-identified extract requested, approved, refused or written
    SUPERVISION = "SUPERVISION"  # a claims scan run (a warning changed is an ALERT event)


@dataclass(frozen=True, slots=True)
class Operation:
    name: str | None
    kind: Kind
    sha256: str

    @classmethod
    def of(cls, text: str | None, name: str | None, is_mutation: bool) -> Operation:
        digest = hashlib.sha256((text or "").encode("utf-8")).hexdigest()
        return cls(name, Kind.MUTATION if is_mutation else Kind.QUERY, digest)


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def _fields(
    paths: Iterable[str], catalogue: Any, reasons: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    out = []
    for path in sorted(paths):
        type_name, _, field_name = path.partition(".")
        entry = catalogue.field(type_name, field_name) if catalogue is not None else None
        item: dict[str, Any] = {
            "field": path,
            "class": entry.data_class if entry else None,
            "level": entry.level if entry else None,
        }
        if reasons is not None:
            # The policy's reason (a rule's ``why``), as the caller's FORBIDDEN_FIELD said.
            item["reason"] = reasons.get(path)
        out.append(item)
    return out


def _relation(ctx: Any, ref: str) -> str | None:
    """The caller's relation to this person as far as the request established it."""
    try:
        return str(ctx.relation_to(ref, None))
    except Exception:  # the person was never prepared (denied before any row was read)
        return None


def persons_of(ctx: Any) -> list[dict[str, Any]]:
    guard = ctx.guard
    catalogue = getattr(ctx.services, "catalogue", None)
    glass = getattr(guard, "break_glass_persons", None) or ()
    out = []
    for ref, record in sorted(guard.accesses.items()):
        if not (record.read or record.masked or record.denied):
            continue
        entry: dict[str, Any] = {
            "personId": ref or None,
            "read": _fields(record.read, catalogue),
            "masked": _fields(record.masked, catalogue),
            "denied": _fields(record.denied, catalogue, record.reasons),
        }
        if ref and (record.denied or ref in glass):
            # Where something was denied, and wherever the glass was broken (BREAK_GLASS).
            entry["relation"] = _relation(ctx, ref)
        out.append(entry)
    return out


def error_codes(errors: Iterable[Any] | None) -> list[str]:
    codes = []
    for error in errors or ():
        code = (getattr(error, "extensions", None) or {}).get("code") or "INTERNAL"
        codes.append(str(code))
    return codes


def outcome_of(codes: list[str], has_data: bool, persons: list[Mapping[str, Any]]) -> Outcome:
    if any(code not in ANSWER_CODES for code in codes):
        return Outcome.ERROR if not has_data else Outcome.PARTIAL
    answered = any(p["read"] or p["masked"] for p in persons)
    refused = any(code in DENIAL_CODES for code in codes) or any(p["denied"] for p in persons)
    if refused and not answered:
        return Outcome.DENIED
    if codes:
        return Outcome.PARTIAL
    return Outcome.OK


def note_audit_read(ctx: Any, what: str) -> None:
    """Mark that this request reads the audit log (``what``: the field or endpoint).

    Called before the caller's role is checked, so a refused attempt is logged as well.
    """
    reads = getattr(ctx, "audit_reads", None)
    if reads is None:
        reads = set()
        ctx.audit_reads = reads
    reads.add(what)


def note_open_data(ctx: Any, entry: Mapping[str, Any]) -> None:
    """Mark that this request asked for a statistic (which, at what grade, what it cost):
    the request is then audited although it read no personal row."""
    notes = getattr(ctx, "open_data", None)
    if notes is None:
        notes = []
        ctx.open_data = notes
    notes.append(dict(entry))


def note_supervision_read(ctx: Any, what: str) -> None:
    """Mark that this request reads fund supervision (``what``: the field): audited like
    every read, refused attempts too, though it returns no personal row."""
    reads = getattr(ctx, "supervision_reads", None)
    if reads is None:
        reads = set()
        ctx.supervision_reads = reads
    reads.add(what)


def audit_log_part(reads: Iterable[str]) -> dict[str, Any]:
    """What of the log was read: names only, never a filter value or an answered event,
    so reading another person's trail copies none of it into the log."""
    return {"class": AUDIT_CLASS, "read": sorted(reads)}


def principal_of(principal: Any) -> dict[str, Any] | None:
    if principal is None:
        return None
    out = {
        "sub": principal.sub,
        "role": str(principal.role),
        "org": principal.org,
        "issuer": principal.issuer,
    }
    # A patient's basis of identity: the credential presented and the assurance of the check.
    cert_type, acr = getattr(principal, "cert_type", None), getattr(principal, "assurance", None)
    if cert_type is not None:
        out["certType"] = cert_type
    if acr is not None:
        out["acr"] = acr
    return out


def _holders(ctx: Any) -> list[str]:
    holders = getattr(ctx, "holder_orgs", None)
    return list(holders()) if callable(holders) else []


def request_event(
    ctx: Any, operation: Operation, errors: Iterable[Any] | None, has_data: bool, client: str | None
) -> dict[str, Any] | None:
    """The event of one GraphQL request, or None when nothing in it needs auditing (no
    personal data asked for or touched, nothing denied, not a mutation)."""
    persons = persons_of(ctx)
    codes = error_codes(errors)
    denied = any(code in DENIAL_CODES for code in codes)
    audit_reads = getattr(ctx, "audit_reads", None)
    open_data = getattr(ctx, "open_data", None)
    supervision_reads = getattr(ctx, "supervision_reads", None)
    if (
        not persons
        and not getattr(ctx, "asked_personal", False)
        and not denied
        and not audit_reads
        and not open_data
        and not supervision_reads
        and operation.kind is not Kind.MUTATION
        and not getattr(ctx, "write_outcomes", None)
    ):
        return None
    deadline = getattr(ctx, "deadline", None)
    failed = sorted(getattr(ctx, "failures", {}) or {})
    guard = ctx.guard
    event = {
        "v": EVENT_VERSION,
        "kind": str(operation.kind),
        "time": now_iso(),
        "requestId": ctx.request_id,
        **client_request_id_part(getattr(ctx, "client_request_id", None)),
        "principal": principal_of(ctx.principal),
        "purpose": str(ctx.purpose) if ctx.purpose is not None else None,
        "breakGlass": bool(getattr(guard, "break_glass", False)),
        # Persons for whom break-glass was asked but refused (a daily limit was reached).
        "breakGlassRefused": sorted(
            getattr(getattr(ctx, "_relations", None), "break_glass_refused", ()) or ()
        ),
        "breakGlassRefusedBecause": getattr(
            getattr(ctx, "_relations", None), "break_glass_refused_because", None
        ),
        "persons": persons,
        "sources": {"touched": sorted(getattr(deadline, "touched", ()) or ()), "failed": failed},
        # The organisations holding those sources: with the principal's, the event's parties,
        # by which an auditor's scope is decided.
        "holders": _holders(ctx),
        "outcome": str(outcome_of(codes, has_data, persons)),
        "errors": sorted(set(codes)),
        "client": client,
        "operation": {"name": operation.name, "sha256": operation.sha256},
    }
    relations = getattr(ctx, "_relations", None)
    opened = getattr(relations, "break_glass_opened", None)
    reason = getattr(ctx, "break_glass_reason", None)
    if opened and reason is not None:
        # The request broke the glass: its event opens the alert (security.audit.alert_state)
        # and keeps the reason, its free text only as the ciphertext the grant holds.
        event["breakGlassOpened"] = break_glass_part(
            opened, reason.code, relations.break_glass_reason_text
        )
    if audit_reads:
        event["auditLog"] = audit_log_part(audit_reads)
    if open_data:
        event["openData"] = open_data
    if supervision_reads:
        # (a warning's change is an ALERT change event of its own: security.audit.alert_state)
        event["supervision"] = {"read": sorted(supervision_reads)}
    # The outcomes of the writes this request made: logged with the request itself, before
    # it is answered, and each names its intent (security.audit.writes).
    outcomes = getattr(ctx, "write_outcomes", None)
    if outcomes:
        event["writes"] = list(outcomes)
    return event


def break_glass_part(persons: Iterable[str], code: str, text: bytes) -> dict[str, Any]:
    """What a request's event says of the break-glass it opened: the persons, the reason's
    code and its free text as a field ciphertext (``breakGlassOpened``)."""
    return {
        "persons": sorted(persons),
        "reason": {"code": code, "text": base64.b64encode(text).decode("ascii")},
    }


def client_request_id_part(client_request_id: str | None) -> dict[str, str]:
    """The id the client offered for its request, beside ours: it helps the client find its
    own request, and is not unique (clients choose it), so it never replaces ``requestId``."""
    return {"clientRequestId": client_request_id} if client_request_id else {}


def audit_endpoint_event(
    *,
    principal: Any,
    purpose: Any,
    client: str | None,
    method: str,
    path: str,
    status: int,
    request_id: str,
    client_request_id: str | None = None,
) -> dict[str, Any]:
    """A read of the audit log over HTTP (``/audit/*``): who, why, which endpoint, result.

    The query string is left out: it names events, and the event text is not repeated.
    """
    outcome = (
        Outcome.OK if status < 400 else Outcome.DENIED if status in (401, 403) else Outcome.ERROR
    )
    return {
        "v": EVENT_VERSION,
        "kind": str(Kind.QUERY),
        "time": now_iso(),
        "requestId": request_id,
        **client_request_id_part(client_request_id),
        "principal": principal_of(principal),
        "purpose": str(purpose) if purpose is not None else None,
        "breakGlass": False,
        "persons": [],
        "sources": {"touched": [], "failed": []},
        "outcome": str(outcome),
        "errors": [] if status < 400 else [f"HTTP_{status}"],
        "client": client,
        "request": {"method": method, "path": path, "status": status},
        "auditLog": audit_log_part([f"{method} {path}"]),
    }


def authentication_event(
    *,
    client: str | None,
    path: str,
    method: str,
    status: int,
    code: str,
    reason: str,
    request_id: str,
    client_request_id: str | None = None,
) -> dict[str, Any]:
    """A refused authentication: where from, what path, why. Never anything of the token."""
    return {
        "v": EVENT_VERSION,
        "kind": str(Kind.AUTHENTICATION),
        "time": now_iso(),
        "requestId": request_id,
        **client_request_id_part(client_request_id),
        "principal": None,
        "purpose": None,
        "breakGlass": False,
        "persons": [],
        "sources": {"touched": [], "failed": []},
        "outcome": str(Outcome.UNAUTHENTICATED if status == 401 else Outcome.DENIED),
        "errors": [code],
        "client": client,
        "request": {"method": method, "path": path, "status": status, "reason": reason},
    }


def privacy_spend_event(
    *,
    principal: Any,
    purpose: Any,
    partner: str,
    period: str,
    statistic: str,
    question: str,
    epsilon_micro: int,
    spent_micro: int,
    budget_micro: int,
    request_id: str,
) -> dict[str, Any]:
    """One charge to a privacy budget: the ledger's entry, written to the Merkle log too, so
    the ledger can be checked against a log nobody can quietly change. The question is named
    by its SHA-256 only (its filter values may be narrow)."""
    return {
        "v": EVENT_VERSION,
        "kind": str(Kind.PRIVACY_SPEND),
        "time": now_iso(),
        "requestId": request_id,
        "principal": principal_of(principal),
        "purpose": str(purpose) if purpose is not None else None,
        "breakGlass": False,
        "persons": [],
        "sources": {"touched": [], "failed": []},
        "outcome": str(Outcome.OK),
        "errors": [],
        "privacySpend": {
            "partner": partner,
            "period": period,
            "statistic": statistic,
            "question": question,
            "epsilonMicro": epsilon_micro,
            "spentMicro": spent_micro,
            "budgetMicro": budget_micro,
        },
    }


def extract_event(
    *, principal: Any, purpose: Any, action: str, extract: Mapping[str, Any], request_id: str
) -> dict[str, Any]:
    """A de-identified extract requested, approved, refused or written, with its parameters
    (grade, classes, k, l, format, row and class counts); never a row of it."""
    return {
        "v": EVENT_VERSION,
        "kind": str(Kind.EXTRACT),
        "time": now_iso(),
        "requestId": request_id,
        "principal": principal_of(principal),
        "purpose": str(purpose) if purpose is not None else None,
        "breakGlass": False,
        "persons": [],
        "sources": {"touched": [], "failed": []},
        "outcome": str(Outcome.OK),
        "errors": [],
        "extract": {"action": action, **extract},
    }


def supervision_event(
    *,
    principal: Any,
    purpose: Any,
    action: str,
    supervision: Mapping[str, Any],
    request_id: str,
    persons: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A fund-supervision run: a scan that stored warnings (its period and counts). A warning
    assigned, acknowledged or closed is an ``ALERT`` change event instead
    (:func:`security.audit.alert_state.change_event`). The person is named only by the
    pseudonym the other events use."""
    return {
        "v": EVENT_VERSION,
        "kind": str(Kind.SUPERVISION),
        "time": now_iso(),
        "requestId": request_id,
        "principal": principal_of(principal),
        "purpose": str(purpose) if purpose is not None else None,
        "breakGlass": False,
        "persons": persons or [],
        "sources": {"touched": [], "failed": []},
        "outcome": str(Outcome.OK),
        "errors": [],
        "supervision": {"action": action, **supervision},
    }
