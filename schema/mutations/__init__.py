"""The write entry points of medfed (Mutation type).

Every mutation that writes at a source takes an ``idempotencyKey`` (``closeAlert`` writes
only the audit log's own alert state, and is idempotent by that state) and is validated in
full before anything is written: all bad fields come back in one ``BAD_USER_INPUT`` error whose
``extensions.problems`` lists each ``path`` (relative to the arguments) and ``reason``.
"""

from __future__ import annotations

import strawberry

from schema.mutations.alerts import CloseAlertPayload, HandleAlertPayload, close_alert, handle_alert
from schema.mutations.consents import (
    ConsentQuery,
    GrantConsentPayload,
    RevokeConsentPayload,
    grant_consent,
    revoke_consent,
)
from schema.mutations.dispensing import (
    deliver_prescription,
    dispense_prescription,
    ship_prescription,
)
from schema.mutations.extracts import (
    ExtractJobPayload,
    approve_extract,
    refuse_extract,
    request_extract,
)
from schema.mutations.filings import FileForCrossRegionCarePayload, file_for_cross_region_care
from schema.mutations.prescriptions import (
    cancel_prescription,
    circulate_prescription,
    issue_prescription,
    review_prescription,
)
from schema.mutations.results import PublishTestResultPayload, publish_test_result
from schema.mutations.rx_common import PrescriptionPayload
from schema.mutations.settlements import RecordSettlementPayload, record_settlement
from schema.supervision.warnings import HandleWarningPayload, handle_warning


@strawberry.type(
    description="The write entry points of medfed. Each is idempotent under a "
    "client-chosen `idempotencyKey`: the same key with the same input "
    "returns the first result and writes nothing new; the same key "
    "with another input fails with IDEMPOTENCY_KEY_REUSED."
)
class Mutation:
    publish_test_result: PublishTestResultPayload = strawberry.mutation(
        resolver=publish_test_result,
        description="Publish a lab or imaging result (检验检查结果) to the calling clinician's "
        "hospital, for every other hospital to read. Clinicians of a hospital "
        "that is a source only, for a visit of the person at that hospital "
        "within the treating window (as the bureau recorded it): publishing "
        "never makes the hospital treating.",
    )
    record_settlement: RecordSettlementPayload = strawberry.mutation(
        resolver=record_settlement,
        description="Record the settlement (结算) of a visit, at the bureau of the treatment "
        "province or, cross-province (跨省直接结算), at the national platform. "
        "Insurance agencies for their own region; settlement centres for "
        "cross-province settlements only (a provincial centre: its province's).",
    )
    file_for_cross_region_care: FileForCrossRegionCarePayload = strawberry.mutation(
        resolver=file_for_cross_region_care,
        description="File for care in another region (异地就医备案) with the national "
        "platform. Patients for themselves, insurance agencies for persons "
        "insured in their region.",
    )
    grant_consent: GrantConsentPayload = strawberry.mutation(
        resolver=grant_consent,
        description="Consent (知情同意) to an institution reading some classes of the calling "
        "patient's data for one purpose during a period. Effective from the next "
        "request. Patients only.",
    )
    request_extract: ExtractJobPayload = strawberry.mutation(
        resolver=request_extract,
        description="Ask for a de-identified extract (research partners): classes the grade "
        "opens, Parquet or CSV. An administrator approves or refuses it.",
    )
    approve_extract: ExtractJobPayload = strawberry.mutation(
        resolver=approve_extract,
        description="Approve a requested extract and write it (administrators).",
    )
    refuse_extract: ExtractJobPayload = strawberry.mutation(
        resolver=refuse_extract,
        description="Refuse a requested extract (administrators).",
    )
    handle_warning: HandleWarningPayload = strawberry.mutation(
        resolver=handle_warning,
        description="Assign, acknowledge or close (RESOLVED: a confirmed violation; "
        "FALSE_POSITIVE) a fund-supervision warning of your region, with a note. The change "
        "is an audit event that sets the state (the model access alerts share). "
        "Supervisors ([[supervision]] view handle).",
    )
    issue_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=issue_prescription,
        description="Issue an e-prescription (开具电子处方), PENDING_REVIEW until a pharmacist "
        "reviews it. Clinicians of a source hospital, for a bureau visit of the person at "
        "that hospital within the treating window. See docs/prescriptions.md.",
    )
    review_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=review_prescription,
        description="Review a pending prescription (审方): APPROVED (it takes effect) or "
        "REJECTED with a reason. Pharmacists of the prescribing hospital or of the pharmacy "
        "it was circulated to.",
    )
    circulate_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=circulate_prescription,
        description="Send a pending or approved prescription to a designated pharmacy "
        "(处方流转), once. The patient only, for their own prescription.",
    )
    dispense_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=dispense_prescription,
        description="Dispense an APPROVED, unexpired prescription once (调剂发药), within the "
        "prescribed quantities, recording the credential checked. Pharmacists of the "
        "pharmacy it was circulated to.",
    )
    ship_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=ship_prescription,
        description="A dispensing for home delivery handed to a carrier (SHIPPED, with the "
        "tracking number; the fee is the patient's). The dispensing pharmacy.",
    )
    deliver_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=deliver_prescription,
        description="The carrier handed a shipped dispensing over (DELIVERED, same tracking "
        "number). The dispensing pharmacy.",
    )
    cancel_prescription: PrescriptionPayload = strawberry.mutation(
        resolver=cancel_prescription,
        description="Withdraw a prescription not yet dispensed, with a reason. Clinicians of "
        "the prescribing hospital.",
    )
    revoke_consent: RevokeConsentPayload = strawberry.mutation(
        resolver=revoke_consent,
        description="Revoke one of the calling patient's consents, effective immediately. "
        "Revoking twice changes nothing. Patients only.",
    )
    handle_alert: HandleAlertPayload = strawberry.mutation(
        resolver=handle_alert,
        description="Assign, acknowledge or close (RESOLVED, FALSE_POSITIVE) an access alert "
        "with a note (security officers: role auditor, purpose AUDIT, an alert within their "
        "audit scope). The change is an audit event that sets the state; a closed alert "
        "stays closed.",
    )
    close_alert: CloseAlertPayload = strawberry.mutation(
        resolver=close_alert,
        description="Close an open or acknowledged alert as RESOLVED with a note (handleAlert "
        "with action RESOLVE, kept for existing clients; it takes no idempotencyKey because "
        "a closed alert cannot be closed again).",
    )


__all__ = ["ConsentQuery", "Mutation"]
