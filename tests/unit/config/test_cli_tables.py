"""Tables of the CLI keep identifiers whole at a narrow terminal, so they can be pasted into
the next command (`failed replay ID`, `accounts activate NAME`, `archive show ID`)."""

from __future__ import annotations

import io

import pytest
from pydantic import BaseModel
from rich.console import Console

from services.config.cli import common
from services.config.cli.accounts import ACCOUNT_COLUMNS, HEALTH_COLUMNS
from services.config.cli.archive import ARCHIVE_COLUMNS
from services.config.cli.common import ID_COLUMNS, print_table, table
from services.config.cli.failed import FAILED_COLUMNS
from services.config.cli.fetchers import FETCHER_COLUMNS
from services.config.cli.settings import PROPERTY_COLUMNS
from services.config.cli.users import LOG_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS

LISTINGS = {
    "failed list": FAILED_COLUMNS,
    "accounts list": (*ACCOUNT_COLUMNS, "owner", "last_fetch_at"),
    "accounts health": HEALTH_COLUMNS,
    "archive list": ARCHIVE_COLUMNS,
    "fetchers": FETCHER_COLUMNS,
    "cases list": ("number", "subject", "status", "created_at"),
    "properties list": PROPERTY_COLUMNS,
    "properties raw": ("module", "key", "value", "version", "updated_by"),
    "users list": USER_COLUMNS,
    "users log": LOG_COLUMNS,
    "tokens list": TOKEN_COLUMNS,
    "scripts list": ("position", "name", "enabled", "package", "matches_cases"),
    "suppressions list": ("address", "since", "source", "reason"),
}
LONG_TEXT = (
    "SMTP 550 5.1.1 <someone.with.a.long.address@customer-subdomain.example.org>: "
    "recipient address rejected: user unknown in virtual mailbox table"
)


REALISTIC = {
    "number": "10042",
    "case_number": "10042",
    "module": "settings",
    "key": "outgoing_subject_template",
    "name": "support-emea",
    "account": "support-emea",
    "user": "operator.emea",
    "address": "someone.with.a.long.address@customer-subdomain.example.org",
}
"""Identifiers as they come; ids (``id``, ``*_id``) are 32 hex digits, like ``new_id()``."""


def is_id(column: str) -> bool:
    return column in ID_COLUMNS or column.endswith("_id")


def render(
    title: str, columns: tuple[str, ...], width: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, str]]:
    shown = table(title, columns)
    ids = {
        c: REALISTIC.get(c, f"{c[:3]}6f1c2a9e4b7d4e0f9a8c3b2d1e0f4a5b"[:32])
        for c in columns
        if is_id(c)
    }
    shown.add_row(*(ids.get(c, LONG_TEXT) for c in columns))
    out = io.StringIO()
    monkeypatch.setattr(common.console, "_real", Console(file=out, width=width, color_system=None))
    print_table(shown)
    return out.getvalue(), ids


@pytest.mark.parametrize("listing", sorted(LISTINGS))
def test_ids_are_whole_at_80_columns(listing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    output, ids = render(listing, LISTINGS[listing], 80, monkeypatch)
    print(output)
    assert ids, f"{listing} shows no identifier column"
    for column, value in ids.items():
        assert any(value in line for line in output.splitlines()), f"{column} cut: {output}"


def test_the_other_columns_wrap_instead_of_being_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    output, _ = render("failed list", FAILED_COLUMNS, 80, monkeypatch)
    assert "…" not in output
    assert all(len(line) <= 80 for line in output.splitlines())
    # Folded over several lines, every character of the long text is still there.
    cells = "".join(line.split("│")[4].strip() for line in output.splitlines() if "│" in line)
    assert LONG_TEXT.replace(" ", "") in cells.replace(" ", "")


def test_a_table_too_wide_for_its_ids_is_printed_wider_not_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    columns = ("id", "account", "raw_id", "outbox_id", "note")
    output, ids = render("ids only", columns, 80, monkeypatch)
    assert max(len(line) for line in output.splitlines()) > 80
    for value in ids.values():
        assert value in output


def test_a_value_is_data_not_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(common.console, "_real", Console(file=out, width=120, color_system=None))
    common.print_rows([common_row("[bold]Printer[/bold] [Case#10042]")], ("subject",), False, "t")
    assert "[bold]Printer[/bold] [Case#10042]" in out.getvalue()


def common_row(subject: str) -> BaseModel:
    class Row(BaseModel):
        subject: str

    return Row(subject=subject)
