from datetime import datetime

from tests.support.federation import Federation, gql, make_id_number


async def test_patient_reads_own_cloud_record(data_dir):
    fed = await Federation(data_dir).setup()
    idn = make_id_number()
    ref = await fed.add_person(idn, "张三")
    await fed.add_visits(ref, 3)
    await fed.add_result(ref)
    await fed.add_cross_settlement(ref, when=datetime(2024, 3, 5))
    app = fed.app()
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        body = await gql(
            c,
            """{ me { personId name idNumber birthDate cloudRecord {
            visits(first: 2) { edges { cursor node { visitId diagnosisText institution { name }
              prescriptions { prescriptionId items { drugName } } } }
              pageInfo { hasNextPage endCursor } }
            settlements { nodes { settlementId crossProvince total fundPay } }
            testResults { nodes { itemCode value recognition { recognized reason validUntil } } }
        } } }""",
        )
    assert "errors" not in body
    me = body["data"]["me"]
    assert me["name"] == "张三" and me["idNumber"] == idn
    assert len(me["cloudRecord"]["visits"]["edges"]) == 2
    assert me["cloudRecord"]["visits"]["pageInfo"]["hasNextPage"] is True
