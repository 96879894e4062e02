"""The demo's reference data uses real, valid codes, and its persons have valid identities."""

from __future__ import annotations

import tomllib

from connectors.demo import clinical, drugs, generator, institutions, regions
from connectors.domain import codes
from tests.support.demo import CONFIG


def test_every_code_in_the_catalogues_is_valid() -> None:
    for item in clinical.LAB_ITEMS.values():
        assert codes.validate_loinc(item.loinc) is None, item
        assert item.low < item.high
    for dx in clinical.DIAGNOSES.values():
        assert codes.validate_icd10(dx.code) is None, dx
        assert all(name in drugs.DRUGS for name in dx.drugs)
        assert all(exam in clinical.IMAGING for exam in dx.imaging)
    for district in regions.DISTRICTS:
        assert codes.validate_region(district.code) is None
        assert district.city in regions.CITIES
    for inst in institutions.INSTITUTIONS:
        check = (
            codes.validate_institution
            if inst.kind == institutions.HOSPITAL
            else codes.validate_pharmacy
        )
        assert check(inst.code) is None, inst
        assert inst.province in regions.PROVINCES
    assert len({i.code for i in institutions.INSTITUTIONS}) == len(institutions.INSTITUTIONS)
    assert any(i.internet for i in institutions.INSTITUTIONS if not i.source)


def test_the_configured_hospitals_and_pharmacies_are_in_the_directory_as_sources() -> None:
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    configured = {s["institution"] for s in config["sources"] if "institution" in s}
    assert configured == {i.code for i in institutions.INSTITUTIONS if i.source}
    levels = {institutions.BY_CODE[c].level for c in configured if c.startswith("H")}
    assert levels == {"TERTIARY", "SECONDARY", "PRIMARY"}


def test_persons_have_unique_valid_ids_consistent_with_their_records() -> None:
    seen = set()
    for index in range(400):
        person = generator.PersonGenerator(7, index)
        records = person.run()
        assert codes.validate_id_number(person.id_number) is None
        assert codes.birth_date_from_id(person.id_number) == person.born
        assert codes.gender_from_id(person.id_number) == ("MALE" if person.male else "FEMALE")
        seen.add(person.id_number)
        row = next(v for _, t, v in records if t == "persons")
        assert row["birth_date_enc"] == person.born.isoformat()
    assert len(seen) == 400


def test_the_same_seed_and_index_give_the_same_records() -> None:
    assert generator.generate_person(3, 41) == generator.generate_person(3, 41)
    assert generator.generate_person(3, 41) != generator.generate_person(4, 41)
