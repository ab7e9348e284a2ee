"""``mailroom``: the operator's command line, a thin shell over the services' functions.

Commands talk to MongoDB and RabbitMQ directly with the process settings (MAILROOM_*), so
they work wherever a service could run; every listing takes ``--json``. Each command group
lives in its own module; this one only assembles them into ``app``.
"""

from __future__ import annotations

import typer

from services.config.cli import (
    accounts,
    archive,
    cases,
    demo,
    failed,
    fetchers,
    outgoing,
    run,
    settings,
    simulate,
    suppressions,
    transfer,
    users,
)

app = typer.Typer(help="Mailroom: email gateway for case-management systems.", no_args_is_help=True)
app.command("run")(run.run)
app.command("secret-key")(run.secret_key)
app.command("simulate")(simulate.simulate)
app.command("fetchers")(fetchers.fetchers)
for group, name in (
    (accounts.app, "accounts"),
    (outgoing.app, "outgoing"),
    (settings.settings_app, "settings"),
    (settings.properties_app, "properties"),
    (failed.app, "failed"),
    (cases.app, "cases"),
    (suppressions.app, "suppressions"),
    (transfer.app, "config"),
    (archive.app, "archive"),
    (users.app, "users"),
    (users.tokens_app, "tokens"),
    (demo.app, "demo"),
):
    app.add_typer(group, name=name)

__all__ = ["app"]
