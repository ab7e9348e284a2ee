"""``mailroom``: the operator's command line, a thin shell over the services' functions.

Commands talk to MongoDB and RabbitMQ directly with the process settings (MAILROOM_*), so
they work wherever a service could run; every listing takes ``--json``. Each command group
lives in its own module, named below with the help ``mailroom --help`` shows; a module is
imported only when its command runs (start-up time: see bench/cli.py). A failing command
prints one line, ``error: <what> (<where>) — <what to do>``, and exits 1; ``--debug`` (or
MAILROOM_DEBUG=1) prints the traceback too.
"""

from __future__ import annotations

from typing import Annotated

import typer

from services.config.cli._lazy import Lazy, lazy_group
from services.config.cli.common import DEBUG_ENV, set_debug

_CLI = "services.config.cli"
COMMANDS: dict[str, Lazy] = {
    "run": Lazy(f"{_CLI}.run:run", "Run one service, or all four in this process."),
    "secret-key": Lazy(
        f"{_CLI}.run:secret_key",
        "Print a new random value for MAILROOM_SECRET_KEY or MAILROOM_API_TOKEN.",
    ),
    "simulate": Lazy(
        f"{_CLI}.simulate:simulate",
        "Parse a mail and run every incoming-mail script as a dry run; changes nothing.",
    ),
    "fetchers": Lazy(
        f"{_CLI}.fetchers:fetchers",
        "List the fetcher instances with heartbeat age, the accounts each owns and its counts.",
    ),
    "accounts": Lazy(f"{_CLI}.accounts:app", "Incoming mail accounts."),
    "outgoing": Lazy(f"{_CLI}.outgoing:app", "The outgoing SMTP connection."),
    "settings": Lazy(f"{_CLI}.settings:settings_app", "Settings, addresses, processor scripts."),
    "properties": Lazy(f"{_CLI}.settings:properties_app", "Raw system properties."),
    "scripts": Lazy(
        f"{_CLI}.scripts:app",
        "Incoming-mail scripts (--outgoing: outgoing-mail scripts): list, enable, disable, move.",
    ),
    "failed": Lazy(f"{_CLI}.failed:app", "The failed-mail desk."),
    "cases": Lazy(f"{_CLI}.cases:app", "Cases (read-only)."),
    "suppressions": Lazy(
        f"{_CLI}.suppressions:app",
        "Addresses that get no automatic mail (spam complaints put them there).",
    ),
    "config": Lazy(f"{_CLI}.transfer:app", "Export and import the whole configuration."),
    "archive": Lazy(
        f"{_CLI}.archive:app",
        "The test archive: outgoing mail kept instead of sent on test systems.",
    ),
    "users": Lazy(f"{_CLI}.users:app", "Console users and their roles."),
    "credentials": Lazy(
        f"{_CLI}.credentials:app",
        "Named OAuth 2.0 credentials (Microsoft 365, Google Workspace) and their consent, "
        "and static API tokens (Fastmail, Stalwart).",
    ),
    "tokens": Lazy(f"{_CLI}.users:tokens_app", "Users' API tokens (printed once, at creation)."),
    "demo": Lazy(
        f"{_CLI}.demo:app",
        "Try Mailroom on the local servers `make run` starts (load .local/env first).",
    ),
}
"""Every command: name → where it lives and the help listed before it is loaded (a unit
test checks the help against the module's own)."""

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    help="Mailroom: email gateway for case-management systems.",
    no_args_is_help=True,
    # The top-level help in plain click format: rich's formatter takes longer to import than
    # all the rest of `mailroom --help` (a command's own help is still formatted by rich).
    rich_markup_mode=None,
)


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar=DEBUG_ENV, help="On failure, print the traceback too."),
    ] = False,
) -> None:
    """Mailroom: email gateway for case-management systems."""
    set_debug(debug)


__all__ = ["app"]
