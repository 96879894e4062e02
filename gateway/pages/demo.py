"""Dev mode only: the sign-in page's demo choices. ``GET /pages/demo/people`` lists a few
interesting demo persons (as ``medfed demo show`` does) and ``POST /pages/demo/token`` mints a
token with the demo issuer for a chosen role, exactly as ``medfed token`` would. Neither route
exists outside dev mode, where the demo issuer is refused anyway (docs/identity.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import Settings

# The roles a newcomer can try, with the organisation each acts for.
ROLES = {
    "clinician": "H33010600001",
    "auditor": "100000",
    "insurance_agency": "330000",
    "settlement_center": "100000",
}
# The professional the demo clinician is (a doctor of the demo's own form, D + hospital +
# serial), so the sign-in's token can sign e-prescriptions as the identity provider would.
PROFESSIONALS = {"clinician": "DH33010600001001"}
PEOPLE_SHOWN = 8


def demo_routes(settings: Settings) -> list[Route]:
    people: list[dict[str, Any]] = []
    lock = asyncio.Lock()

    async def list_people(_request: Request) -> Response:
        from connectors.demo import show
        from gateway.startup import open_keyring

        async with lock:
            if not people:
                keyring = open_keyring(settings, create=False)
                found = await show.interesting_persons(
                    list(settings.sources), keyring, PEOPLE_SHOWN
                )
                people.extend(
                    {
                        "personId": p["personId"],
                        "name": p["name"],
                        "insuredIn": p["insuredIn"],
                        "treatedIn": p["treatedIn"],
                    }
                    for p in found
                )
        return JSONResponse({"people": people, "roles": ROLES})

    async def token(request: Request) -> Response:
        from security.identity import open_demo_issuer

        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send JSON"}, status_code=415)
        try:
            body = await request.json()
            role = body["role"]
            if role == "patient":
                person = body["person"]
                chosen = next(p for p in people if p["personId"] == person)
                minted = {"role": role, "org": chosen["insuredIn"][0], "person": person}
            else:
                minted = {"role": role, "org": ROLES[role]}
                if role in PROFESSIONALS:
                    minted["professional"] = PROFESSIONALS[role]
        except (ValueError, KeyError, TypeError, StopIteration):
            return JSONResponse(
                {"error": "choose a role of the list, or a person of the list"}, status_code=400
            )
        issuer = open_demo_issuer(settings.data_dir, create=False)
        return JSONResponse({"token": issuer.mint(**minted, ttl_seconds=3600)})

    return [
        Route("/pages/demo/people", list_people),
        Route("/pages/demo/token", token, methods=["POST"]),
    ]
