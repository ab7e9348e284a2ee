"""Email configuration → Settings: the global settings (with a live check of the outgoing
subject template against the incoming pattern), conversation ids, the outgoing connection
(Test connection, Send test mail) and whether outgoing mail is intercepted.

Each form is declared by its typed view and saved by the function the API route calls
(``set_fields``, ``set_outgoing``); a value the view refuses comes back under its field, a
refusal of the whole (a template the pattern cannot read) above the form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.config.api.deps import RuntimeDep
from services.config.api.routes.outgoing_test import OutgoingTestIn
from services.config.web.auth import AdminForm, Viewing, Visitor
from services.config.web.model_form import (
    check,
    form_fields,
    texts,
)
from services.config.web.responses import after_post
from services.config.web.sections import Section, save_section
from services.config.web.templates import CONSOLE, render
from services.sender.probe import ProbeReport, probe
from services.sender.smtp import effective_connection
from shared.conversation import ConversationSettings
from shared.models.config import (
    SAMPLE_CASE_REFERENCE,
    SAMPLE_SUBJECT,
    GlobalSettings,
    OutgoingConnection,
    render_subject,
)
from shared.runtime import Runtime

router = APIRouter(prefix=f"{CONSOLE}/email", include_in_schema=False)

SETTINGS = f"{CONSOLE}/email/settings"
OAUTH = {"auth": ("oauth2",), "credentials_from": ("",)}
OWN = {"credentials_from": ("",)}


SECTIONS = (
    Section("global", "Global settings", GlobalSettings, "settings", form_fields(GlobalSettings)),
    Section(
        "conversation",
        "Conversation ids",
        ConversationSettings,
        "conversation",
        form_fields(ConversationSettings, hints={"enabled": {"title": "Use conversation ids"}}),
    ),
    Section(
        "outgoing",
        "Outgoing connection (SMTP)",
        OutgoingConnection,
        None,
        form_fields(
            OutgoingConnection,
            order=(
                *("host", "port", "security", "verify_tls", "ca_file", "credentials_from"),
                *("auth", "username", "password", "client_id", "client_secret", "authority"),
            ),
            hints={
                "host": {"title": "SMTP server"},
                "auth": {"title": "Authentication method", "applies_to": OWN},
                "username": {"applies_to": OWN},
                "password": {"applies_to": {"auth": ("basic",), **OWN}},
                "client_id": {"applies_to": OAUTH},
                "client_secret": {"applies_to": OAUTH},
                "authority": {"applies_to": OAUTH},
                "scope": {"applies_to": OAUTH},
                "oauth_ca_file": {"applies_to": OAUTH},
                "credentials_from": {"title": "Use the credentials of incoming account"},
            },
        ),
    ),
)
"""The page's forms, top to bottom; the outgoing one's OAuth 2.0 fields show for auth
oauth2 and its own credentials only without ``credentials_from``."""
BY_KEY = {s.key: s for s in SECTIONS}


@dataclass(frozen=True)
class SubjectCheck:
    """What the outgoing subject template makes of a sample subject, and whether the
    incoming pattern reads the case reference back (the model's own rule says why not)."""

    rendered: str
    refusal: str


def subject_check(rt: Runtime, values: Mapping[str, Any]) -> SubjectCheck:
    """The live check of the global form's pattern and template."""
    template = str(values.get("outgoing_subject_template", ""))
    try:
        rendered = render_subject(template, case=SAMPLE_CASE_REFERENCE, subject=SAMPLE_SUBJECT)
    except ValueError:
        rendered = ""
    data = {
        **rt.config.settings.model_dump(),
        "incoming_subject_pattern": values.get("incoming_subject_pattern", ""),
        "outgoing_subject_template": template,
    }
    errors = check(GlobalSettings, data, ()).errors
    return SubjectCheck(rendered=rendered, refusal="; ".join(errors.values()))


def _page(
    request: Request,
    rt: Runtime,
    visitor: Visitor,
    *,
    values: Mapping[str, Mapping[str, Any]] | None = None,
    errors: Mapping[str, Mapping[str, str]] | None = None,
    report: ProbeReport | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shown_values = {s.key: (values or {}).get(s.key) or s.stored(rt) for s in SECTIONS}
    forms = [
        {
            "key": s.key,
            "heading": s.heading,
            "current": shown_values[s.key],
            "refusals": (errors or {}).get(s.key, {}),
            **s.shown(shown_values[s.key]),
            # The outgoing connection may borrow an incoming account's credentials.
            "options": {"credentials_from": ["", *sorted(rt.config.accounts)]}
            if s.key == "outgoing"
            else {},
        }
        for s in SECTIONS
    ]
    name = visitor.name
    return render(
        request,
        "email_settings.html",
        visitor,
        status_code=status_code,
        title="Settings",
        tab="settings",
        forms=forms,
        check=subject_check(rt, shown_values["global"]),
        system=rt.config.system,
        configured=rt.config.outgoing is not None,
        report=report,
        send_to=name if "@" in name else "",
    )


@router.get("/settings")
async def settings_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """The Settings tab."""
    return _page(request, rt, visitor)


@router.post("/settings/subject-check")
async def live_check(request: Request, rt: RuntimeDep, posted: AdminForm) -> HTMLResponse:
    """The subject check for the pattern and template being typed (htmx, as they change)."""
    return render(
        request, "_subject_check.html", posted.visitor, check=subject_check(rt, texts(posted.data))
    )


@router.post("/settings/redraw/{section}")
async def redraw(request: Request, section: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """The page again with the section's posted values, its fields those that apply to the
    chosen authentication (htmx swaps the form in), nothing saved."""
    if section not in BY_KEY:
        return _page(request, rt, posted.visitor, status_code=404)
    chosen = BY_KEY[section]
    return _page(request, rt, posted.visitor, values={section: chosen.posted(rt, posted)})


@router.post("/settings/{section}")
async def save(request: Request, section: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Save one of the page's forms (``global``, ``conversation``, ``outgoing``)."""
    if section not in BY_KEY:
        return _page(request, rt, posted.visitor, status_code=404)
    chosen = BY_KEY[section]
    errors = await save_section(chosen, rt, posted)
    if not errors:
        return after_post(request, f"{SETTINGS}#{section}", f"{chosen.heading} saved.")
    return _page(
        request, rt, posted.visitor, values={section: chosen.posted(rt, posted)},
        errors={section: errors},
        status_code=422,
    )  # fmt: skip


@router.post("/outgoing-test")
async def test_outgoing(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Test the saved outgoing connection; with an address, send a test mail there (unless
    outgoing mail is intercepted). The server's error is shown as it said it."""
    connection = effective_connection(rt.config)
    if connection is None:
        return after_post(
            request, SETTINGS, "No outgoing connection is configured yet.", error=True
        )
    send_to: str | None = None
    if posted.text("action") == "send":
        try:
            asked = OutgoingTestIn.model_validate({"send_to": posted.text("send_to").strip()})
        except ValidationError:
            return after_post(
                request, f"{SETTINGS}#outgoing", "send_to: type the address the test mail "
                "goes to (name@example.org)", error=True,
            )  # fmt: skip
        send_to = str(asked.send_to)
    report = await probe(connection, rt.config, send_to=send_to, credentials=rt.credentials)
    if request.headers.get("HX-Request") == "true":
        return render(request, "_outgoing_test.html", posted.visitor, report=report)
    return _page(request, rt, posted.visitor, report=report)
