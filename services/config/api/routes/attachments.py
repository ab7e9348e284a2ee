"""The bytes of an attachment of a case's incoming mail (operator and admin may read them)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from services.config.api.deps import RuntimeDep, Viewer
from shared.errors import NotFound

router = APIRouter(prefix="/cases", tags=["cases"])

_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,127}/[a-z0-9!#$&^_.+-]{1,127}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9 ._()-]")


def content_disposition(filename: str | None) -> str:
    """Always a download (never shown inline: the file comes from a stranger), with the
    name as ASCII for old clients and in full per RFC 6266 / RFC 5987."""
    name = filename or "attachment"
    fallback = _UNSAFE_NAME.sub("_", name)[:200] or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name[:200], safe='')}"


@router.get(
    "/{case_number}/messages/{raw_id}/attachments/{index}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def attachment_content(
    case_number: int,
    raw_id: Annotated[str, Path(max_length=64)],
    index: Annotated[int, Path(ge=0)],
    rt: RuntimeDep,
    _: Viewer,
) -> StreamingResponse:
    """Attachment ``index`` (from 0, in the order the mail lists them) of the incoming mail
    ``raw_id`` (the ``raw_id`` of its ``case.*`` event) of a case, as stored when the mail
    was processed. 404 when there is no such attachment, or when its bytes were not kept
    because the mail was over the size limit."""
    found = await rt.store.cases.attachment(case_number=case_number, raw_id=raw_id, index=index)
    if found.file_id is None:
        raise NotFound(
            "this attachment was not kept: the mail was over processor/max_mail_size_bytes "
            "(the raw mail has it)"
        )
    chunks = await rt.store.cases.attachments.open(file_id=found.file_id)
    media_type = found.content_type.lower()
    return StreamingResponse(
        chunks,
        media_type=media_type if _MEDIA_TYPE.fullmatch(media_type) else "application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(found.filename),
            "Content-Length": str(found.size),
            "X-Content-Type-Options": "nosniff",
        },
    )
