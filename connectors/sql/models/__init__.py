"""SQLAlchemy models, one declarative base (and so one metadata) per source kind.

Columns ending in ``_enc`` hold field ciphertext (see ``security.crypto.field_cipher``) whose
associated data is ``(table, column, primary key)``; columns ending in ``_bidx`` hold blind
indexes; ``person_ref`` is the federation-wide pseudonym that joins a person across sources.
Money is stored in fen (integer hundredths of a yuan) so arithmetic is exact.
"""

from connectors.sql.models import bureau, directory, hospital, pharmacy, platform
from connectors.sql.models.base import SOURCE_KINDS

METADATA_BY_KIND = {
    "bureau": bureau.Base.metadata,
    "hospital": hospital.Base.metadata,
    "pharmacy": pharmacy.Base.metadata,
    "platform": platform.Base.metadata,
    "directory": directory.Base.metadata,
}
assert set(METADATA_BY_KIND) == set(SOURCE_KINDS)

__all__ = [
    "METADATA_BY_KIND",
    "SOURCE_KINDS",
    "bureau",
    "directory",
    "hospital",
    "pharmacy",
    "platform",
]
