"""The desk's one filter declaration: what it matches, how it reads a form and a URL, its
positions, and that the API, the CLI and the console all take every one of its fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer.main
from pydantic import ValidationError

from services.config.api.main import create_api
from services.config.cli.failed import app as failed_cli
from shared.errors import ConfigRejected
from shared.models.desk import DeskCursor, DeskFilter
from shared.models.records import FailedMail
from shared.runtime import Runtime
from shared.settings import SharedSettings

AT = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def entry(**values: str) -> FailedMail:
    return FailedMail.model_validate(
        {"_id": "processor:x", "queue": "q", "routing_key": "mail.received", "ref": "x",
         "body": {}, "error": "x", **values}
    )  # fmt: skip


def test_text_filters_ignore_case_and_empty_form_fields_are_no_filter() -> None:
    form = DeskFilter.model_validate(
        {"account": " ", "sender": "", "error": "TIMEOUT", "since": ""}
    )
    assert (form.account, form.sender, form.since) == (None, None, None) and form.by_text
    assert form.matches(entry(error="a Timeout talking to X"))
    assert not form.matches(entry(error="rejected"))
    assert DeskFilter(sender="ann@").matches(entry(sender="Ann <ANN@example.org>", error="e"))
    assert not DeskFilter(sender="ann@").matches(entry(error="e"))  # no sender recorded


def test_times_without_a_zone_are_utc_and_query_keeps_only_what_is_set() -> None:
    form = DeskFilter.model_validate({"since": "2026-03-01T12:10", "account": "sales"})
    assert form.since == datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    assert form.query() == {"account": "sales", "since": "2026-03-01T12:10:00+00:00"}
    assert DeskFilter.model_validate(form.query()) == form
    assert DeskFilter(status="all").statuses == ("failed", "replayed")
    with pytest.raises(ValidationError):
        DeskFilter.model_validate({"status": "gone"})


def test_a_position_survives_its_url_form_and_a_bad_one_names_the_parameter() -> None:
    cursor = DeskCursor(at=AT, id="processor:a_b:c")
    assert DeskCursor.decode(cursor.encode()) == cursor
    assert DeskCursor.before(AT).key() < cursor.key()
    for bad in ("", "x_y", "12", "99999999999999999999_x"):
        with pytest.raises(ConfigRejected, match="after:"):
            DeskCursor.decode(bad)


def test_every_filter_field_is_an_api_query_parameter_and_a_cli_option() -> None:
    fields = set(DeskFilter.model_fields)
    api = create_api(Runtime(SharedSettings())).openapi()
    for path, verb in (("/failed", "get"), ("/failed/count", "get"), ("/failed/replay", "post")):
        names = {p["name"] for p in api["paths"][path][verb]["parameters"]}
        assert fields <= names, path
    group = typer.main.get_command(failed_cli)
    for command, expected in (("list", fields), ("count", fields - {"status"})):
        options = {p.name for p in group.commands[command].params}  # type: ignore[attr-defined]
        assert expected <= options, command
    replay = {p.name for p in group.commands["replay"].params}  # type: ignore[attr-defined]
    assert fields - {"status"} <= replay
