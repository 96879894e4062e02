"""A small federation on disk for API tests: the demo's sources (three bureaus, five
hospitals, two pharmacies, the platform, the directory) in a temporary data directory, with
helpers that write exactly the rows a test needs, encrypted as the sources store them."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from connectors.domain.codes import id_check_digit
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau, directory, hospital, platform
from gateway.app import build_services, create_app
from gateway.config import Settings, load_settings
from gateway.startup import open_keyring
from security.crypto import BlindIndexer, FieldCipher
from security.identity import DemoIssuer, ensure_demo_issuer
from security.identity.demo_issuer import DEMO_SCOPE
from tests.support import REPO

OUTSIDE_DEV_ISSUER = "https://idp.test.medfed.local"

INSTITUTIONS = [
    ("H33010600001", "杭州西湖医院", "TERTIARY", "HOSPITAL", "330106", True),
    ("H33020300002", "宁波海曙区人民医院", "SECONDARY", "HOSPITAL", "330203", False),
    ("H37010200003", "济南历下中心医院", "TERTIARY", "HOSPITAL", "370102", True),
    ("H37020200004", "青岛市南社区卫生服务中心", "PRIMARY", "HOSPITAL", "370202", False),
    ("H22010200005", "长春南关医院", "TERTIARY", "HOSPITAL", "220102", False),
    ("P33010600101", "杭州西湖大药房", "NONE", "PHARMACY", "330106", False),
    ("P37010200102", "济南历下药店", "NONE", "PHARMACY", "370102", False),
]

_serial = itertools.count(1)
# A first visit day inside the treating window (180 days): visits from it on make their
# institution treating. add_visits' default (January 2020) is long outside it.
RECENT_VISIT = date.today() - timedelta(days=40)
# Services of the apps built during the running test: conftest closes their audit recorders
# on the test's own loop, as the app's lifespan would (requests through httpx's ASGI
# transport never run it), so no audit writer process outlives its test.
BUILT: list[Any] = []
# The reason a test's emergency request gives unless it says otherwise (code, free text).
BREAK_GLASS_REASON = ("UNCONSCIOUS", "患者昏迷，急诊抢救")


async def close_built() -> None:
    from gateway.audit_http import RECORDER

    while BUILT:
        recorder = BUILT.pop().extras.get(RECORDER)
        if recorder is not None:
            await recorder.close()


def make_id_number(region: str = "330106", born: date = date(1980, 5, 17), seq: int = 123) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


class Federation:
    def __init__(
        self,
        data_dir: Path,
        *,
        pg_schema: str | None = None,
        pg_url: str | None = None,
        dev: bool = True,
    ) -> None:
        settings = load_settings(REPO / "medfed.toml", data_dir=data_dir, env={})
        if pg_schema:
            sources = tuple(
                dataclasses.replace(s, url=pg_url, schema=f"{pg_schema}_{s.name}".replace("-", "_"))
                for s in settings.sources
            )
            settings = dataclasses.replace(settings, sources=sources)
        # The suite runs in parallel workers on a small machine: a request's deadline of 5 s
        # would turn a busy moment into SOURCE_UNAVAILABLE. Tests of the deadline set their own.
        gateway = {"deadline_seconds": 30.0, **settings.raw.get("gateway", {})}
        settings = settings.with_tables(gateway=gateway)
        self.settings: Settings = dataclasses.replace(settings, dev=dev)
        self.data_dir = data_dir
        self.cipher: FieldCipher
        self._engines: dict[str, AsyncEngine] = {}
        self.indexer: BlindIndexer

    async def setup(self, institutions: bool = True) -> Federation:
        for spec in self.settings.sources:
            await migrate.upgrade(spec)
        await migrate.upgrade(self.settings.gateway_spec)
        keyring = open_keyring(self.settings, create=True)
        for spec in self.settings.sources:
            keyring.ensure_source(spec.name)
        self.cipher = FieldCipher(keyring)
        self.indexer = BlindIndexer(keyring)
        if institutions:
            await self.insert(
                "directory",
                directory.Institution,
                [
                    dict(code=c, name=n, level=lv, kind=k, region=r, internet_hospital=i)
                    for c, n, lv, k, r, i in INSTITUTIONS
                ],
            )
        return self

    # -- writing -------------------------------------------------------------------------------
    async def insert(self, source: str, model: Any, rows: list[dict]) -> None:
        engine = self._engines.get(source)
        if engine is None:
            # NullPool: nothing stays open between writes, so no test leaks a connection.
            engine = self._engines[source] = create_source_engine(
                self.settings.source(source), poolclass=NullPool
            )
        async with engine.begin() as conn:
            await conn.execute(insert(model.__table__), rows)

    def enc(self, source: str, table: str, column: str, row_key: str, value: str) -> bytes:
        return self.cipher.encrypt(
            value, source=source, table=table, column=column, row_key=row_key
        )

    async def add_person(
        self,
        id_number: str,
        name: str,
        *,
        source: str = "bureau-330000",
        region: str = "330106",
        phone: str = "13812345678",
        address: str = "杭州市西湖区文三路1号",
        status: str = "ACTIVE",
        begin: date = date(2015, 1, 1),
        end: date | None = None,
    ) -> str:
        ref = self.indexer.person_ref(id_number)
        psn_no = f"PSN{next(_serial):08d}"
        born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
        e = lambda col, v: self.enc(source, "persons", col, psn_no, v)  # noqa: E731
        await self.insert(
            source,
            bureau.Person,
            [
                dict(
                    psn_no=psn_no,
                    person_ref=ref,
                    id_number_bidx=self.indexer.id_number(id_number),
                    phone_bidx=self.indexer.phone(phone),
                    name_enc=e("name_enc", name),
                    id_number_enc=e("id_number_enc", id_number),
                    phone_enc=e("phone_enc", phone),
                    birth_date_enc=e("birth_date_enc", born.isoformat()),
                    address_enc=e("address_enc", address),
                    gender="MALE" if int(id_number[16]) % 2 else "FEMALE",
                    insuplc_admdvs=region,
                )
            ],
        )
        await self.insert(
            source,
            bureau.Enrollment,
            [
                dict(
                    enrollment_id=f"EN{next(_serial):08d}",
                    psn_no=psn_no,
                    person_ref=ref,
                    insutype="EMPLOYEE",
                    pool_admdvs=region,
                    begin_date=begin,
                    end_date=end,
                    status=status,
                    account_balance_fen=123456,
                )
            ],
        )
        return ref

    async def add_visits(
        self,
        ref: str,
        count: int,
        *,
        source: str = "bureau-330000",
        institution: str = "H33010600001",
        visit_type: str = "OUTPATIENT",
        insured: str = "330106",
        with_prescriptions: bool = True,
        diagnosis: str = "I10",
        text: str = "原发性高血压",
        begin: date | None = None,
    ) -> list[str]:
        """``count`` visits on consecutive days from ``begin`` (default 2020-01-01, outside
        the treating window; pass RECENT_VISIT for visits that make the institution treating)."""
        visits, rxs, items = [], [], []
        ids = []
        for i in range(count):
            mdtrt = f"MD{next(_serial):010d}"
            ids.append(mdtrt)
            visits.append(
                dict(
                    mdtrt_id=mdtrt,
                    person_ref=ref,
                    institution_code=institution,
                    visit_type=visit_type,
                    begin_date=(begin or date(2020, 1, 1)) + timedelta(days=i % 28),
                    end_date=None,
                    diagnosis_codes=diagnosis,
                    diagnosis_text_enc=self.enc(
                        source, "visits", "diagnosis_text_enc", mdtrt, text
                    ),
                    doctor_code="D330106000123",
                    insuplc_admdvs=insured,
                    mdtrtarea_admvs=institution[1:7],
                    cross_region=insured[:2] != institution[1:3],
                )
            )
            if with_prescriptions:
                rx = f"RX{next(_serial):010d}"
                rxs.append(
                    dict(
                        rx_id=rx,
                        mdtrt_id=mdtrt,
                        person_ref=ref,
                        institution_code=institution,
                        doctor_code="D330106000123",
                        doctor_signature="c2lnbmVk",
                        issued_at=datetime(2020, 1, 1, 9),
                        review_status="APPROVED",
                        reviewed_by="Y330106000001",
                        reviewed_at=datetime(2020, 1, 1, 10),
                        circulated_to="P33010600101",
                    )
                )
                items.append(
                    dict(
                        item_id=f"{rx}-1",
                        rx_id=rx,
                        drug_code="XC09AAE056A001010100",
                        drug_name="依那普利片",
                        quantity=2,
                        unit="盒",
                        dosage="每日一次，每次10mg",
                        days=28,
                    )
                )
        await self.insert(source, bureau.Visit, visits)
        if rxs:
            await self.insert(source, bureau.Prescription, rxs)
            await self.insert(source, bureau.PrescriptionItem, items)
        return ids

    async def add_result(
        self,
        ref: str,
        *,
        source: str = "hospital-h33010600001",
        category: str = "LAB",
        item_code: str = "2345-7",
        reported_at: datetime = datetime(2026, 11, 20, 10),
        value: float = 6.1,
        findings: str = "双肺纹理清晰",
        modality: str | None = None,
        visit: str | None = None,
    ) -> str:
        """A result in the hospital's own result system. It makes no relation by itself: a
        treating relation comes only from a bureau's visit (``add_visits``)."""
        rid = f"R{next(_serial):010d}"
        institution = self.settings.source(source).institution
        imaging = category == "IMAGING"
        await self.insert(
            source,
            hospital.TestResult,
            [
                dict(
                    result_id=rid,
                    person_ref=ref,
                    patient_no="PT1",
                    institution_code=institution,
                    mdtrt_id=visit,
                    category=category,
                    item_code=item_code,
                    item_name="影像检查" if imaging else "葡萄糖",
                    value=None if imaging else value,
                    unit=None if imaging else "mmol/L",
                    ref_low=None if imaging else 3.9,
                    ref_high=None if imaging else 6.1,
                    flag=None if imaging else "N",
                    modality=modality,
                    body_part="胸部" if imaging else None,
                    findings_enc=self.enc(source, "test_results", "findings_enc", rid, findings)
                    if imaging
                    else None,
                    impression_enc=None,
                    study_uid="1.2.156.1.2.3" if imaging else None,
                    ordering_doctor="D330106000123",
                    collected_at=reported_at,
                    reported_at=reported_at,
                )
            ],
        )
        return rid

    async def add_cross_settlement(
        self,
        ref: str,
        *,
        when: datetime,
        total_fen: int = 100000,
        insured: str = "220102",
        treated: str = "330106",
        institution: str = "H33010600001",
    ) -> str:
        sid = f"XS{next(_serial):010d}"
        fund = total_fen * 59 // 100
        await self.insert(
            "platform",
            platform.CrossSettlement,
            [
                dict(
                    setl_id=sid,
                    mdtrt_id=f"MD{next(_serial):010d}",
                    filing_id="F1",
                    person_ref=ref,
                    institution_code=institution,
                    med_type="INPATIENT",
                    setl_time=when,
                    insuplc_admdvs=insured,
                    mdtrtarea_admvs=treated,
                    total_fen=total_fen,
                    in_policy_fen=total_fen,
                    fund_pay_fen=fund,
                    acct_pay_fen=0,
                    cash_pay_fen=total_fen - fund,
                    clearing_status="PENDING",
                    clearing_month=f"{when:%Y-%m}",
                )
            ],
        )
        return sid

    # -- reading through the API -------------------------------------------------------------------
    def app(self, services=None):
        services = services or build_services(self.settings)
        BUILT.append(services)
        return create_app(self.settings, services)

    def subgraph_app(self, name: str, services=None):
        """The app serving one federation subgraph (records, results, settlement)."""
        services = services or build_services(self.settings)
        BUILT.append(services)
        return create_app(self.settings, services, subgraph=name)

    def token(
        self,
        role: str,
        org: str,
        *,
        person: str | None = None,
        purposes: list[str] | None = None,
        sub: str | None = None,
        acr: str | None = None,
        cert_type: str | None = None,
        professional: str | None = None,
    ) -> str:
        minted = dict(
            role=role,
            org=org,
            person=person,
            purposes=purposes,
            sub=sub,
            acr=acr,
            cert_type=cert_type,
            professional=professional,
        )
        if self.settings.dev:
            return ensure_demo_issuer(self.data_dir).mint(**minted)
        # Outside dev mode the gateway refuses to start while the demo issuer is trusted:
        # tokens come from an issuer of the test's own, trusted in the default issuers file.
        issuer = self._outside_dev_issuer()
        token = issuer.mint(**minted)
        claims = jwt.decode(token, options={"verify_signature": False})
        return jwt.encode(
            {**claims, "iss": OUTSIDE_DEV_ISSUER},
            issuer.private_key,
            algorithm="EdDSA",
            headers={"kid": "test-1", "typ": "JWT"},
        )

    def _outside_dev_issuer(self) -> DemoIssuer:
        issuer = getattr(self, "_test_issuer", None)
        if issuer is None:
            key = Ed25519PrivateKey.generate()
            issuer = self._test_issuer = DemoIssuer(self.data_dir / "keys" / "test.pem", key)
            path = self.data_dir / "keys" / "issuers.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f'[[issuers]]\niss = "{OUTSIDE_DEV_ISSUER}"\naudiences = ["medfed"]\n\n'
                f'[[issuers.keys]]\nkid = "test-1"\nalg = "EdDSA"\n'
                f'public_key = """\n{issuer.public_pem()}"""\n\n' + DEMO_SCOPE.toml()
                # The test issuer may assert what the demo issuer may.
            )
        return issuer

    def client(
        self,
        app,
        token: str | None,
        purpose: str | None = None,
        reason: tuple[str, str] | None = BREAK_GLASS_REASON,
    ) -> httpx.AsyncClient:
        """A client of ``app``; with purpose EMERGENCY it gives ``reason`` (code, free text)
        for breaking the glass, unless that is None."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if purpose:
            headers["X-Purpose-Of-Use"] = purpose
        if purpose == "EMERGENCY" and reason is not None:
            headers["X-Break-Glass-Reason"] = reason[0]
            headers["X-Break-Glass-Text"] = quote(reason[1])
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://medfed.test", headers=headers
        )


async def gql(client: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()
