"""``GET /keys/professionals/{keyId}``: the registration of a professional's signing key
(organisation, code, algorithm, SPKI PEM public key), for anyone to check a signature with
their own tools. Public keys are public: no token is asked. Unknown ids answer 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.edge.responses import refusal
from security.crypto.professional_keys import ProfessionalKeys

PROFESSIONAL_KEYS_PREFIX = "/keys/professionals/"


def professional_key_routes(keys: ProfessionalKeys) -> list[Route]:
    async def registration(request: Request) -> Response:
        found = keys.registered(request.path_params["key_id"])
        if found is None:
            return refusal(404, "NOT_FOUND", "no key is registered under this id")
        return JSONResponse(found.as_json(), headers={"Cache-Control": "public, max-age=3600"})

    return [Route(PROFESSIONAL_KEYS_PREFIX + "{key_id}", registration, methods=["GET"])]
