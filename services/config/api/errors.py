"""Every error of the API as one JSON shape, ``{"error": <code>, "detail": <text>}``, with the
status saying what kind it is. No stack trace, no echo of what was sent: a refused password
must not come back in the error that refuses it.

The one mapping of the API: routes raise Mailroom's errors and never catch them.

- request validation (bad JSON, wrong type, missing or unknown field) → 422 ``invalid_request``,
  the detail naming each field as ``body.<field>``, ``query.<name>`` or ``path.<name>``;
- ``ConfigRejected`` (a value the typed views refuse, rendered templates included) → 422
  ``config_rejected``, naming the property and field (``settings.fetch_retries: …``);
- ``NotFound`` → 404, ``Conflict`` → 409, ``SecretsUnavailable`` → 409;
- ``Transient`` (a server the request needs does not answer) → 503;
- anything else is a bug: 500 ``internal``, logged with its type only.

A console page's request (``/console/...``) gets the same status and detail as an HTML error
page instead of JSON (``services.config.web.responses.error_page``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from services.config.errors import Conflict
from services.config.web.responses import error_page, is_console
from shared.errors import ConfigRejected, NotFound, SecretsUnavailable, Transient

log = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


class ErrorOut(JSONResponse):
    """``{"error": code, "detail": text}`` with the status."""

    def __init__(
        self, status: int, detail: str, *, code: str | None = None, headers: Any = None
    ) -> None:
        error = code or ERROR_CODES.get(status, "error")
        super().__init__({"error": error, "detail": detail}, status_code=status, headers=headers)


def answer(
    request: Request, status: int, detail: str, *, code: str | None = None, headers: Any = None
) -> Response:
    """The error as JSON, or as the console's error page for a console request."""
    if is_console(request):
        return error_page(request, status, detail)
    return ErrorOut(status, detail, code=code, headers=headers)


def _where(loc: tuple[int | str, ...]) -> str:
    # ("body", "password") → "body.password"; pydantic's "function-after[...]" parts are noise.
    return ".".join(str(p) for p in loc if not str(p).startswith("function-"))


def _problem(error: Any) -> str:
    """One request-validation problem as ``<where>: <what>``, never with the input."""
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "json_invalid":
        # loc is ("body", <character offset>): the offset is not a field.
        reason = error.get("ctx", {}).get("error", "")
        return f"body: not valid JSON at character {loc[-1]}: {reason}".rstrip(": ")
    if kind == "missing" and loc == ("body",):
        return "body: a JSON object is required"
    return f"{_where(loc)}: {str(error['msg']).removeprefix('Value error, ')}"


def install_error_handlers(api: FastAPI) -> None:
    """Translate every exception into the JSON error shape."""

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # The messages only, never the "input": it may be the secret that was refused.
        problems = [_problem(e) for e in exc.errors()]
        detail = "; ".join(problems) or "invalid request"
        return answer(request, 422, detail, code="invalid_request")

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return answer(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @api.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> Response:
        return answer(request, 409, str(exc))

    @api.exception_handler(ConfigRejected)
    async def rejected(request: Request, exc: ConfigRejected) -> Response:
        return answer(request, 422, str(exc), code="config_rejected")

    @api.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return answer(request, 404, str(exc))

    @api.exception_handler(SecretsUnavailable)
    async def no_key(request: Request, exc: SecretsUnavailable) -> Response:
        return answer(request, 409, str(exc), code="secrets_unavailable")

    @api.exception_handler(Transient)
    async def unavailable(request: Request, exc: Transient) -> Response:
        return answer(request, 503, str(exc), headers={"Retry-After": "5"})

    @api.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.error("API request failed: %s", type(exc).__name__)
        return answer(request, 500, "internal error", code="internal")
