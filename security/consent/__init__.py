"""Patient consent (知情同意): who may read which classes of a patient's data, why, and until
when. The policy engine asks :meth:`ConsentStore.active_consents` (or its batched form) and
checks :meth:`Consent.covers` (``schema.relations`` does, per class); the API grants, lists
and revokes."""

from security.consent.classes import ConsentStatus, DataClass
from security.consent.store import (
    Consent,
    ConsentNotFound,
    ConsentStore,
    NotYourConsent,
)

__all__ = [
    "Consent",
    "ConsentNotFound",
    "ConsentStatus",
    "ConsentStore",
    "DataClass",
    "NotYourConsent",
]
