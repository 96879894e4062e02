"""De-identified extract jobs in the gateway's database: requested by a research partner,
approved (or refused) by an administrator, then written. Parameters and outcome only; an
extract's rows never enter this table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase, insert_if_absent

REQUESTED, APPROVED, REFUSED, WRITTEN, FAILED = (
    "REQUESTED",
    "APPROVED",
    "REFUSED",
    "WRITTEN",
    "FAILED",
)


class ExtractJobRow(GatewayBase):
    __tablename__ = "extract_jobs"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(24))
    org: Mapped[str] = mapped_column(String(24), index=True)
    requested_by: Mapped[str] = mapped_column(String(255))  # issuer|sub
    purpose: Mapped[str] = mapped_column(String(20))
    classes: Mapped[str] = mapped_column(String(200))  # catalogue classes, comma separated
    detail: Mapped[str] = mapped_column(String(8))  # coarse | fine
    format: Mapped[str] = mapped_column(String(8))  # parquet | csv
    status: Mapped[str] = mapped_column(String(10))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    persons: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: levels, k, l, …


TABLE = ExtractJobRow.__table__


@dataclass(frozen=True)
class ExtractJob:
    job_id: str
    role: str
    org: str
    requested_by: str
    purpose: str
    classes: tuple[str, ...]
    detail: str
    format: str
    status: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    rows: int | None = None
    persons: int | None = None
    sha256: str | None = None
    path: str | None = None
    outcome: dict | None = None

    @classmethod
    def of(cls, row) -> ExtractJob:
        return cls(
            job_id=row.job_id,
            role=row.role,
            org=row.org,
            requested_by=row.requested_by,
            purpose=row.purpose,
            classes=tuple(c for c in row.classes.split(",") if c),
            detail=row.detail,
            format=row.format,
            status=row.status,
            requested_at=row.requested_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            rows=row.rows,
            persons=row.persons,
            sha256=row.sha256,
            path=row.path,
            outcome=orjson.loads(row.outcome) if row.outcome else None,
        )


class ExtractJobs:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def request(self, job: ExtractJob) -> ExtractJob:
        row = {
            "job_id": job.job_id,
            "role": job.role,
            "org": job.org,
            "requested_by": job.requested_by,
            "purpose": job.purpose,
            "classes": ",".join(job.classes),
            "detail": job.detail,
            "format": job.format,
            "status": REQUESTED,
            "requested_at": job.requested_at.astimezone(UTC),
        }
        async with self._engine.begin() as conn:
            await insert_if_absent(conn, TABLE, row)
        found = await self.get(job.job_id)
        assert found is not None
        return found

    async def get(self, job_id: str) -> ExtractJob | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(TABLE).where(TABLE.c.job_id == job_id))).first()
        return None if row is None else ExtractJob.of(row)

    async def list(self, org: str | None, limit: int) -> list[ExtractJob]:
        stmt = select(TABLE).order_by(TABLE.c.requested_at.desc(), TABLE.c.job_id).limit(limit)
        if org is not None:
            stmt = stmt.where(TABLE.c.org == org)
        async with self._engine.connect() as conn:
            return [ExtractJob.of(r) for r in await conn.execute(stmt)]

    async def decide(self, job_id: str, status: str, by: str, now: datetime) -> bool:
        """Move a REQUESTED job to APPROVED or REFUSED; False if it was not REQUESTED."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(TABLE)
                .where(TABLE.c.job_id == job_id, TABLE.c.status == REQUESTED)
                .values(status=status, decided_by=by, decided_at=now.astimezone(UTC))
            )
        return result.rowcount == 1

    async def finish(self, job_id: str, status: str, **outcome) -> None:
        values = {"status": status}
        for key in ("rows", "persons", "sha256", "path"):
            if key in outcome:
                values[key] = outcome.pop(key)
        values["outcome"] = orjson.dumps(outcome).decode()
        async with self._engine.begin() as conn:
            await conn.execute(update(TABLE).where(TABLE.c.job_id == job_id).values(**values))
