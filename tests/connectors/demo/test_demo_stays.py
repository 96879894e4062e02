"""A person is in one place at a time in the demo: the care drawn for each kind (at home,
chronic follow-ups, care elsewhere) is placed so that no two offline visits are at once by
the supervision rule's own test, except the demo's one planted fraud (挂床住院: one person in
HELD_BED_EVERY seen elsewhere during a stay), which SIMULTANEOUS_CARE must find."""

from __future__ import annotations

from connectors.demo.generator import HELD_BED_EVERY, PersonGenerator
from connectors.supervision import rules as r

SEED = 20201101
RULES = r.default_rules()


def _offline(records) -> list[dict]:
    return [
        row for _, table, row in records if table == "visits" and row["visit_type"] in r.OFFLINE
    ]


def _at_once(visits: list[dict]) -> list[str]:
    return sorted(
        v["mdtrt_id"] for v in visits if any(r.at_once(v, o) for o in visits if o is not v)
    )


def test_no_one_is_in_two_places_at_once():
    stays = 0
    for index in range(300):
        visits = _offline(PersonGenerator(SEED, index).run())
        stays += sum(v["visit_type"] == "INPATIENT" for v in visits)
        assert _at_once(visits) == [], index
    assert stays > 50  # the check saw stays, and the visits around them


def test_the_planted_held_bed_is_the_one_simultaneous_care_finds():
    planted = []
    for index in range(HELD_BED_EVERY - 1, 20 * HELD_BED_EVERY, HELD_BED_EVERY):
        generator = PersonGenerator(SEED, index)
        visits = _offline(generator.run())
        clashing = _at_once(visits)
        if generator.held_bed is None:
            assert clashing == [], index
            continue
        planted.append(index)
        # the stay and the outpatient visit inside it, and nothing else
        assert len(clashing) == 2, (index, clashing)
        kinds = {v["visit_type"] for v in visits if v["mdtrt_id"] in clashing}
        assert kinds == {"INPATIENT", "OUTPATIENT"}
        outpatient = next(
            v for v in visits if v["mdtrt_id"] in clashing and v["visit_type"] == "OUTPATIENT"
        )
        assert outpatient["begin_date"] == generator.held_bed
        # the rule finds it from the outpatient claim's side
        claim = {"mdtrt_id": outpatient["mdtrt_id"]}
        facts = r.Facts(visit=outpatient, visits=visits)
        hit = r.simultaneous_care(RULES.get("SIMULTANEOUS_CARE"), claim, facts, None)
        assert hit is not None and "at the same time" in hit
    # a handful per 100,000 persons: some of these 20 candidates have a stay long enough
    assert 1 <= len(planted) <= 20
