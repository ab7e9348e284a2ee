"""Testing the outgoing SMTP connection (the "test" button)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, EmailStr

from services.config.api.deps import Admin, RuntimeDep
from services.sender.probe import ProbeReport, probe
from services.sender.smtp import effective_connection
from shared.errors import NotFound

router = APIRouter(prefix="/outgoing", tags=["outgoing"])


class OutgoingTestIn(BaseModel):
    """What to test; with ``send_to`` a test mail goes there (unless mail is intercepted)."""

    send_to: EmailStr | None = None


class OutgoingTestOut(BaseModel):
    """The steps that worked, the technical error, and whether mail is intercepted."""

    ok: bool
    server: str
    security: str
    steps: list[str]
    error: str | None
    intercepted: bool
    test_mail: str | None

    @classmethod
    def of(cls, report: ProbeReport) -> OutgoingTestOut:
        """The API's view of a probe report."""
        return cls.model_validate(report, from_attributes=True)


@router.post("/test")
async def test_outgoing(body: OutgoingTestIn, rt: RuntimeDep, _: Admin) -> OutgoingTestOut:
    """Connect, secure, authenticate and optionally send a test mail; 200 even when the
    server refuses (``ok`` false, ``error`` says why)."""
    config = rt.config
    connection = effective_connection(config)
    if connection is None:
        raise NotFound("no outgoing connection is configured")
    send_to = str(body.send_to) if body.send_to is not None else None
    report = await probe(connection, config, send_to=send_to, credentials=rt.credentials)
    return OutgoingTestOut.of(report)
