"""``medfed demo build`` on SQLite: what a user and an auditor of the files would check."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from connectors.demo import generator
from connectors.demo.show import TAGS
from connectors.domain import benefits, codes
from gateway.config import load_settings
from gateway.startup import open_keyring
from security.crypto import BlindIndexer, DecryptionError, FieldCipher
from tests.support.demo import BUREAUS, CONFIG, HOSPITALS, PHARMACIES, build, db, medfed

PERSONS = 300
SEED = 20201101


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    return data_dir, build(data_dir, PERSONS, SEED)


@pytest.fixture(scope="module")
def cipher(demo):
    data_dir, _ = demo
    keyring = open_keyring(load_settings(CONFIG, data_dir=data_dir), create=False)
    return FieldCipher(keyring), BlindIndexer(keyring)


def _all(data_dir: Path, sources, sql: str) -> list:
    rows = []
    for source in sources:
        with db(data_dir, source) as conn:
            rows += conn.execute(sql).fetchall()
    return rows


def test_build_writes_every_source_the_manifest_and_the_marker(demo) -> None:
    data_dir, manifest = demo
    assert manifest["persons"] == PERSONS and manifest["seed"] == SEED
    assert len(manifest["contentHash"]) == 64
    assert (data_dir / ".demo-built").exists()
    assert len(manifest["counts"]) == 12
    for source, tables in manifest["counts"].items():
        assert tables, f"{source} got no rows"
        with db(data_dir, source) as conn:
            for table, count in tables.items():
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count
    assert manifest["counts"]["platform"]["clearings"] > 0
    assert manifest["counts"]["directory"]["institutions"] >= 20


def test_no_plain_id_number_name_or_phone_is_in_the_database_files(demo) -> None:
    data_dir, _ = demo
    blob = b"".join(p.read_bytes() for p in (data_dir / "sources").iterdir())
    checked = 0
    for index in range(PERSONS):
        person = generator.PersonGenerator(SEED, index)
        person.run()
        values = [person.id_number, person.phone]
        if len(person.name) >= 3:  # two characters could occur by chance in other text
            values.append(person.name)
        for value in values:
            assert value.encode("utf-8") not in blob, f"plain {value!r} found"
            checked += 1
    assert checked > 2 * PERSONS


def test_a_ciphertext_moved_to_another_row_or_column_does_not_decrypt(demo, cipher) -> None:
    data_dir, _ = demo
    fields, _ = cipher
    with db(data_dir, "bureau-330000") as conn:
        a, b, c = conn.execute(
            "SELECT psn_no, name_enc, address_enc FROM persons ORDER BY psn_no LIMIT 3"
        ).fetchall()
        # The demo writes the version-2 format, bound to its source.
        assert {row[1][0] for row in (a, b, c)} == {2}
        conn.execute("UPDATE persons SET name_enc = ? WHERE psn_no = ?", (b["name_enc"], a[0]))
        conn.execute("UPDATE persons SET name_enc = ? WHERE psn_no = ?", (a["name_enc"], b[0]))
        conn.commit()
        try:
            for row in (a, b):
                moved = conn.execute(
                    "SELECT name_enc FROM persons WHERE psn_no = ?", (row[0],)
                ).fetchone()[0]
                with pytest.raises(DecryptionError):
                    fields.decrypt(
                        moved,
                        source="bureau-330000",
                        table="persons",
                        column="name_enc",
                        row_key=row[0],
                    )
            with pytest.raises(DecryptionError):  # same row, other column
                fields.decrypt(
                    c["address_enc"],
                    source="bureau-330000",
                    table="persons",
                    column="name_enc",
                    row_key=c[0],
                )
            assert fields.decrypt(
                c["name_enc"],
                source="bureau-330000",
                table="persons",
                column="name_enc",
                row_key=c[0],
            )
        finally:  # put them back for the other tests of this module
            conn.execute("UPDATE persons SET name_enc = ? WHERE psn_no = ?", (a["name_enc"], a[0]))
            conn.execute("UPDATE persons SET name_enc = ? WHERE psn_no = ?", (b["name_enc"], b[0]))
            conn.commit()


def test_blind_index_joins_a_moved_person_across_two_provinces(demo, cipher) -> None:
    data_dir, _ = demo
    fields, indexer = cipher
    by_bidx: dict[str, list] = defaultdict(list)
    for source in BUREAUS:
        with db(data_dir, source) as conn:
            for row in conn.execute(
                "SELECT p.*, e.status, e.begin_date, e.end_date FROM persons p "
                "JOIN enrollments e ON e.psn_no = p.psn_no"
            ):
                by_bidx[row["id_number_bidx"]].append((source, row))
    moved = {k: v for k, v in by_bidx.items() if len(v) > 1}
    assert moved, "no person insured in two provinces"
    for bidx, rows in moved.items():
        plain = {
            fields.decrypt(
                row["id_number_enc"],
                source=source,
                table="persons",
                column="id_number_enc",
                row_key=row["psn_no"],
            )
            for source, row in rows
        }
        assert len(plain) == 1 and indexer.id_number(plain.pop()) == bidx
        assert len({row["person_ref"] for _, row in rows}) == 1
        ended = [row for _, row in rows if row["status"] == "ENDED"]
        active = [row for _, row in rows if row["status"] == "ACTIVE"]
        assert len(ended) == 1 and len(active) == 1
        assert ended[0]["end_date"] < active[0]["begin_date"]


def test_same_seed_same_content_other_seed_other_content(demo, tmp_path) -> None:
    # Parallel and serial generation, and fresh keys, must not change the logical content.
    one = build(tmp_path / "one", 120, 5, "--workers", "2")
    two = build(tmp_path / "two", 120, 5, "--workers", "0")
    other = build(tmp_path / "other", 120, 6)
    assert one["contentHash"] == two["contentHash"]
    assert one["counts"] == two["counts"]
    assert other["contentHash"] != one["contentHash"]
    with db(tmp_path / "one", "bureau-330000") as a, db(tmp_path / "two", "bureau-330000") as b:
        ref_a = a.execute("SELECT person_ref FROM persons ORDER BY psn_no").fetchall()
        ref_b = b.execute("SELECT person_ref FROM persons ORDER BY psn_no").fetchall()
        assert ref_a != ref_b  # pseudonyms are keyed by each build's own linkage key


def test_settlement_arithmetic_and_fund_shares(demo) -> None:
    data_dir, _ = demo
    with db(data_dir, "directory") as conn:
        level = {r["code"]: r["level"] for r in conn.execute("SELECT * FROM institutions")}
    settlements = _all(data_dir, BUREAUS, "SELECT * FROM settlements")
    cross = _all(data_dir, ["platform"], "SELECT * FROM cross_settlements")
    assert settlements and cross
    for s in [*settlements, *cross]:
        assert s["total_fen"] == s["fund_pay_fen"] + s["acct_pay_fen"] + s["cash_pay_fen"]
        assert 0 <= s["in_policy_fen"] <= s["total_fen"]
        assert min(s["fund_pay_fen"], s["acct_pay_fen"], s["cash_pay_fen"]) >= 0
    assert {level[s["institution_code"]] for s in settlements} == set(benefits.LEVELS)
    cross_share = sum(s["fund_pay_fen"] for s in cross) / sum(s["total_fen"] for s in cross)
    assert 0.54 <= cross_share <= 0.64, cross_share
    assert not any(s["cross_province"] for s in settlements)


def test_every_settlement_is_split_by_the_benefits_file(demo) -> None:
    """The demo is built through the rules: each stored split is what benefits.toml gives for
    the stored bill, visit, institution level, enrolment and the year's earlier settlements."""
    data_dir, _ = demo
    rules = benefits.default_benefits()
    with db(data_dir, "directory") as conn:
        level = {r["code"]: r["level"] for r in conn.execute("SELECT * FROM institutions")}
    visits = {v["mdtrt_id"]: v for v in _all(data_dir, BUREAUS, "SELECT * FROM visits")}
    enrolments = defaultdict(list)
    for row in _all(data_dir, BUREAUS, "SELECT * FROM enrollments"):
        enrolments[row["person_ref"]].append(row)
    stored = [
        {**dict(s), "setl_time": datetime.fromisoformat(s["setl_time"])}
        for s in _all(data_dir, BUREAUS, "SELECT * FROM settlements")
        + _all(data_dir, ["platform"], "SELECT * FROM cross_settlements")
    ]
    by_person = defaultdict(list)
    for s in stored:
        by_person[s["person_ref"]].append(s)
    kinds = defaultdict(int)
    for s in stored:
        visit = visits[s["mdtrt_id"]]
        begin = visit["begin_date"]
        (enrolment,) = [
            e
            for e in enrolments[s["person_ref"]]
            if e["pool_admdvs"] == s["insuplc_admdvs"]
            and e["begin_date"] <= begin
            and (e["end_date"] is None or begin <= e["end_date"])
        ]
        split = benefits.compute(
            rules.region_for(s["insuplc_admdvs"]),
            benefits.Bill(s["total_fen"], s["in_policy_fen"]),
            insurance_type=enrolment["insutype"],
            level=level[s["institution_code"]],
            medical_type=s["med_type"],
            diagnoses=visit["diagnosis_codes"].split(","),
            cross_province=s["insuplc_admdvs"][:2] != s["mdtrtarea_admvs"][:2],
            account_balance_fen=enrolment["account_balance_fen"],
            earlier=benefits.earlier_from_rows(
                s["insuplc_admdvs"], by_person[s["person_ref"]], s["setl_time"], s["setl_id"]
            ),
        )
        assert (split.fund_fen, split.account_fen, split.cash_fen) == (
            s["fund_pay_fen"],
            s["acct_pay_fen"],
            s["cash_pay_fen"],
        ), s["setl_id"]
        kinds[(split.scheme, split.capped, split.deductible_fen > 0)] += 1
    # the demo exercises every scheme and the deductible
    assert {k[0] for k in kinds} >= {"inpatient", "outpatient", "chronic"}
    assert any(k[2] for k in kinds)


def test_filings_precede_their_cross_province_settlements_and_clearings_add_up(demo) -> None:
    data_dir, _ = demo
    with db(data_dir, "platform") as conn:
        filings = {f["filing_id"]: f for f in conn.execute("SELECT * FROM filings")}
        cross = conn.execute("SELECT * FROM cross_settlements").fetchall()
        clearings = conn.execute("SELECT * FROM clearings").fetchall()
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for s in cross:
        f = filings[s["filing_id"]]
        assert f["person_ref"] == s["person_ref"]
        assert datetime.fromisoformat(f["filed_at"]) < datetime.fromisoformat(s["setl_time"])
        assert f["mdtrtarea_admvs"] in (s["mdtrtarea_admvs"], s["mdtrtarea_admvs"][:2] + "0000")
        assert s["insuplc_admdvs"][:2] != s["mdtrtarea_admvs"][:2]
        assert s["clearing_month"] == s["setl_time"][:7]
        key = (s["clearing_month"], s["insuplc_admdvs"][:2], s["mdtrtarea_admvs"][:2])
        totals[key][0] += 1
        totals[key][1] += s["total_fen"]
        totals[key][2] += s["fund_pay_fen"]
    assert {
        (c["month"], c["payer_province"][:2], c["payee_province"][:2]): [
            c["settlement_count"],
            c["total_fen"],
            c["fund_pay_fen"],
        ]
        for c in clearings
    } == dict(totals)


def test_codes_ids_and_visit_types_are_valid(demo, cipher) -> None:
    data_dir, _ = demo
    fields, _ = cipher
    with db(data_dir, "directory") as conn:
        directory = {r["code"]: r for r in conn.execute("SELECT * FROM institutions")}
    people = [(b, p) for b in BUREAUS for p in _all(data_dir, [b], "SELECT * FROM persons")]
    for source, person in people:
        id_number = fields.decrypt(
            person["id_number_enc"],
            source=source,
            table="persons",
            column="id_number_enc",
            row_key=person["psn_no"],
        )
        assert codes.validate_id_number(id_number) is None
        born = fields.decrypt(
            person["birth_date_enc"],
            source=source,
            table="persons",
            column="birth_date_enc",
            row_key=person["psn_no"],
        )
        assert born == codes.birth_date_from_id(id_number).isoformat()
        assert person["gender"] == codes.gender_from_id(id_number)
        assert codes.validate_region(person["insuplc_admdvs"]) is None
    for e in _all(data_dir, BUREAUS, "SELECT * FROM enrollments"):
        assert e["insutype"] in ("EMPLOYEE", "RESIDENT") and e["status"] in ("ACTIVE", "ENDED")
    types = set()
    for source in BUREAUS:
        with db(data_dir, source) as conn:
            for v in conn.execute("SELECT * FROM visits"):
                types.add(v["visit_type"])
                inst = directory[v["institution_code"]]
                assert inst["region"][:2] == source[-6:-4]  # treated in this bureau's province
                assert all(codes.validate_icd10(c) is None for c in v["diagnosis_codes"].split(","))
                if v["visit_type"] == "INTERNET_REVISIT":
                    assert inst["internet_hospital"]
                if v["visit_type"] == "PHARMACY":
                    assert inst["kind"] == "PHARMACY"
    assert types == {
        "OUTPATIENT",
        "INPATIENT",
        "INTERNET_REVISIT",
        "CHRONIC_OUTPATIENT",
        "PHARMACY",
    }


def test_results_belong_to_visits_at_their_hospital(demo) -> None:
    data_dir, _ = demo
    visits = {v["mdtrt_id"]: v for v in _all(data_dir, BUREAUS, "SELECT * FROM visits")}
    categories = set()
    for source in HOSPITALS:
        with db(data_dir, source) as conn:
            patients = {p["patient_no"] for p in conn.execute("SELECT * FROM patients")}
            for r in conn.execute("SELECT * FROM test_results"):
                categories.add(r["category"])
                assert visits[r["mdtrt_id"]]["institution_code"] == r["institution_code"]
                assert r["institution_code"].lower() == source.removeprefix("hospital-")
                assert r["patient_no"] in patients
                assert r["collected_at"] <= r["reported_at"]
                if r["category"] == "LAB":
                    assert codes.validate_loinc(r["item_code"]) is None
                    assert r["flag"] in ("N", "H", "L") and r["unit"]
                else:
                    assert r["study_uid"].startswith("1.2.156.")
                    assert r["modality"] in ("CT", "MR", "DR", "US")
                    assert r["findings_enc"] and r["impression_enc"]
    assert categories == {"LAB", "IMAGING"}


def test_dispensings_are_of_prescriptions_circulated_to_that_pharmacy(demo) -> None:
    data_dir, _ = demo
    rx = {r["rx_id"]: r for r in _all(data_dir, BUREAUS, "SELECT * FROM prescriptions")}
    seen = 0
    for source in PHARMACIES:
        with db(data_dir, source) as conn:
            for d in conn.execute("SELECT * FROM dispensings"):
                seen += 1
                assert rx[d["rx_id"]]["circulated_to"] == d["pharmacy_code"]
                assert rx[d["rx_id"]]["review_status"] == "APPROVED"
                assert d["total_fen"] == d["fund_pay_fen"] + d["acct_pay_fen"] + d["cash_pay_fen"]
                assert d["delivery_fee_fen"] == 0 or d["delivered"]
                items = conn.execute(
                    "SELECT sum(amount_fen) FROM dispensing_items WHERE dispensing_id = ?",
                    (d["dispensing_id"],),
                )
                assert items.fetchone()[0] == d["total_fen"]  # the delivery fee is not in it
    assert seen > 0


def test_a_second_build_needs_force_and_force_keeps_the_keys(demo, tmp_path, capsys) -> None:
    data_dir = tmp_path / "data"
    first = build(data_dir, 40, 9)
    # usage.json counts encryptions (it grows with every build), it holds no key.
    keys = {
        p: p.read_bytes()
        for p in (data_dir / "keys").rglob("*")
        if p.is_file() and p.name not in ("usage.json", "usage.lock")
    }
    capsys.readouterr()
    assert medfed(data_dir, "demo", "build", "--persons", "40", "--seed", "9", "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert "--force" in err and len(err.splitlines()) == 1
    again = build(data_dir, 40, 9, "--force")
    assert again["contentHash"] == first["contentHash"] and again["counts"] == first["counts"]
    assert {p: p.read_bytes() for p in keys} == keys


def test_show_prints_persons_that_exist_and_are_interesting(demo, capsys) -> None:
    data_dir, _ = demo
    capsys.readouterr()
    assert medfed(data_dir, "demo", "show") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 8
    refs = {r[0] for r in _all(data_dir, BUREAUS, "SELECT person_ref FROM persons")}
    covered = set()
    for person in lines:
        assert person["personId"] in refs
        assert codes.validate_id_number(person["idNumber"]) is None and person["name"]
        assert person["provinces"] and person["interesting"]
        assert set(person["counts"]) >= {
            "enrollments",
            "visits",
            "results",
            "settlements",
            "crossProvinceSettlements",
            "filings",
            "dispensings",
        }
        covered.update(person["interesting"])
        if "moved provinces" in person["interesting"]:
            assert len(person["provinces"]) == 2 and person["counts"]["enrollments"] == 2
        if "cross-province care" in person["interesting"]:
            assert person["counts"]["crossProvinceSettlements"] > 0
            assert person["counts"]["filings"] > 0
    assert covered == set(TAGS)


def test_filings_use_the_platforms_one_vocabulary(demo) -> None:
    """The demo writes the categories and channels that fileForCrossRegionCare accepts and the
    API answers as enums (it once wrote RETIRED_RESETTLED, which the mutation refused)."""
    data_dir, _ = demo
    with db(data_dir, "platform") as conn:
        rows = conn.execute("SELECT category, channel FROM filings").fetchall()
    categories = {r["category"] for r in rows}
    assert categories <= set(codes.FILING_CATEGORIES)
    assert {r["channel"] for r in rows} <= set(codes.FILING_CHANNELS)
    assert "RELOCATED_RETIREE" in categories  # the retirees of the demo are there, renamed


def test_the_directory_names_the_codes_the_records_use(demo) -> None:
    """Every region, diagnosis and drug code in the demo's visits, settlements and prescriptions
    has a name in the directory's code_labels, and every institution an address and phone."""
    data_dir, _ = demo
    with db(data_dir, "directory") as conn:
        labels = {(r["kind"], r["code"]) for r in conn.execute("SELECT * FROM code_labels")}
        places = conn.execute("SELECT address, phone FROM institutions").fetchall()
    assert all(p["address"] and p["phone"] for p in places)
    visits = _all(data_dir, BUREAUS, "SELECT diagnosis_codes, mdtrtarea_admvs FROM visits")
    items = _all(data_dir, BUREAUS, "SELECT drug_code FROM prescription_items")
    for v in visits:
        assert ("REGION", v["mdtrtarea_admvs"]) in labels
        assert all(("DIAGNOSIS", c) in labels for c in v["diagnosis_codes"].split(",") if c)
    assert all(("DRUG", i["drug_code"]) in labels for i in items)
