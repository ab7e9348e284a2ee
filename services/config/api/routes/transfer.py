"""Export and import of the whole configuration (admin only)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.config.api.deps import Admin, RuntimeDep
from services.config.api.force import ForceDep
from services.config.api.schemas import VersionOut
from services.config.transfer import ConfigExport, export_config, import_config

router = APIRouter(prefix="/config", tags=["export and import"])


class ExportIn(BaseModel):
    """Export options: with a passphrase, secrets are included, encrypted with it."""

    model_config = ConfigDict(extra="forbid")
    passphrase: SecretStr | None = Field(default=None, min_length=12, max_length=1024)


class ImportIn(BaseModel):
    """An export document to apply."""

    model_config = ConfigDict(extra="forbid")
    document: ConfigExport
    passphrase: SecretStr | None = Field(default=None, max_length=1024)
    replace: bool = False


@router.post("/export")
async def export(body: ExportIn, rt: RuntimeDep, _: Admin) -> ConfigExport:
    """The whole configuration; secrets only with a passphrase, encrypted with it."""
    passphrase = body.passphrase.get_secret_value() if body.passphrase else None
    return await export_config(rt, passphrase=passphrase)


@router.post("/import")
async def import_(
    body: ImportIn, rt: RuntimeDep, who: Admin, force: ForceDep = False
) -> VersionOut:
    """Apply an export: validated as a whole first, nothing written when it is refused."""
    passphrase = body.passphrase.get_secret_value() if body.passphrase else None
    version = await import_config(
        rt,
        document=body.document,
        who=who,
        passphrase=passphrase,
        replace=body.replace,
        force=force,
    )
    return VersionOut(version=version)
