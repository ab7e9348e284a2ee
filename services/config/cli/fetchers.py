"""``mailroom fetchers``: the fetcher instances, their heartbeat age and their accounts."""

from __future__ import annotations

import json

import typer

from services.config.cli.common import JsonOpt, print_table, run_with, table
from services.config.fetchers import fetcher_status

FETCHER_COLUMNS = ("id", "alive", "heartbeat age", "accounts", "fetched", "errors", "leases")


def fetchers(as_json: JsonOpt = False) -> None:
    """List the fetcher instances with heartbeat age, the accounts each owns and its counts."""
    rows = run_with(fetcher_status)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    shown = table("Fetcher instances", FETCHER_COLUMNS)
    for row in rows:
        shown.add_row(
            row.id,
            "yes" if row.alive else "no",
            f"{row.heartbeat_age_seconds:.1f} s",
            f"{len(row.accounts)}: {', '.join(row.accounts)}" if row.accounts else "0",
            str(row.counts.mails_fetched),
            str(row.counts.fetch_errors),
            str(row.counts.lease_changes),
        )
    print_table(shown)
