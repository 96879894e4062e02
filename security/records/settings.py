"""``[records]`` in medfed.toml: the records log's origin line and where its checkpoints go
outside the gateway database, exactly as the audit log's ([audit] checkpoint_dir and
[[audit.witnesses]])::

    [records]
    origin = "records.hospital.example"    # the checkpoints' origin line (one per gateway)
    checkpoint_seconds = 5                 # sign a checkpoint this often while the log grows
    checkpoint_dir = "records"             # the file of signed notes (relative: data dir)

    [[records.witnesses]]                  # peers that cosign them (C2SP tlog-cosignature)
    name = "peer-a"
    url = "https://peer-a.example/witness"
    key = "peer-a+1a2b3c4d+BASE64"
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from security.audit.outside import WitnessConfig, parse_witnesses
from security.audit.settings import WitnessEntry
from security.tables import NonEmpty, Table

DEFAULT_ORIGIN = "medfed.local/records"


class RecordsSettings(Table):
    origin: NonEmpty = DEFAULT_ORIGIN
    checkpoint_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 5.0
    checkpoint_dir: NonEmpty = "records"
    witnesses: list[WitnessEntry] = Field(default_factory=list)

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("must be an origin line without spaces")
        return value

    def witness_configs(self) -> list[WitnessConfig]:
        return parse_witnesses(self.witnesses)
