"""Email configuration → Addresses: every address property with its description, declared
by the ``Addresses`` view, validated on save (a refusal shown under its field)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.config.api.deps import RuntimeDep
from services.config.web.auth import AdminForm, Viewing, Visitor
from services.config.web.model_form import form_fields
from services.config.web.responses import after_post
from services.config.web.sections import Section, save_section
from services.config.web.templates import CONSOLE, render
from shared.models.config import Addresses
from shared.runtime import Runtime

router = APIRouter(prefix=f"{CONSOLE}/email", include_in_schema=False)

ADDRESSES = f"{CONSOLE}/email/addresses"
SECTION = Section(
    "addresses",
    "Addresses",
    Addresses,
    "addresses",
    form_fields(Addresses, hints={"reply_to": {"title": "Reply-To address"}}),
)


def _page(
    request: Request,
    rt: Runtime,
    visitor: Visitor,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    current = values or SECTION.stored(rt)
    return render(
        request,
        "email_addresses.html",
        visitor,
        status_code=status_code,
        title="Addresses",
        tab="addresses",
        current=current,
        refusals=errors or {},
        **SECTION.shown(current),
    )


@router.get("/addresses")
async def addresses_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """The Addresses tab."""
    return _page(request, rt, visitor)


@router.post("/addresses")
async def save(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Save the addresses (checked together: the From must be an allowed one)."""
    errors = await save_section(SECTION, rt, posted)
    if not errors:
        return after_post(request, ADDRESSES, "Addresses saved.")
    return _page(
        request, rt, posted.visitor, values=SECTION.posted(rt, posted), errors=errors,
        status_code=422,
    )  # fmt: skip
