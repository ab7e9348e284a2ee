"""``mailroom config export|import``: the whole configuration as one file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.config.cli.common import WHO, console, read_secret, run_with
from services.config.cli.settings import ForceOpt

app = typer.Typer(help="Export and import the whole configuration.", no_args_is_help=True)


@app.command("export")
def config_export(
    path: Annotated[Path, typer.Argument(help="Where to write the JSON document.")],
    passphrase_stdin: Annotated[
        bool, typer.Option(help="Include secrets, encrypted with a passphrase read from stdin.")
    ] = False,
) -> None:
    """Export the whole configuration and the named credentials to one file (secrets and
    tokens left out unless asked for; then encrypted with the passphrase)."""
    from services.config.transfer import export_config

    passphrase = read_secret(passphrase_stdin)
    if passphrase is not None and len(passphrase) < 12:
        raise typer.BadParameter("the passphrase needs at least 12 characters")
    document = run_with(lambda rt: export_config(rt, passphrase=passphrase))
    path.write_text(document.model_dump_json(indent=2))
    path.chmod(0o600)
    console.print(
        f"{len(document.properties)} properties and {len(document.credentials)} credentials "
        f"written to {path} (secrets {document.secrets})",
        highlight=False,
    )


@app.command("import")
def config_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    passphrase_stdin: Annotated[bool, typer.Option(help="Read the passphrase from stdin.")] = False,
    replace: Annotated[
        bool, typer.Option(help="Remove properties the file does not hold.")
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Import a configuration file; validated as a whole, nothing written when refused."""
    from services.config.transfer import ConfigExport, import_config

    document = ConfigExport.model_validate_json(path.read_text())
    passphrase = read_secret(passphrase_stdin)
    version = run_with(
        lambda rt: import_config(
            rt, document=document, who=WHO, passphrase=passphrase, replace=replace, force=force
        ),
        broker=True,
    )
    console.print(f"imported, configuration version {version}")
