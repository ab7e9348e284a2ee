"""Logs never contain a registered secret, wherever it hides in the record; one format per
process names the service, account and mail of every record."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from faststream.rabbit import RabbitBroker, RabbitRouter
from faststream.rabbit.testing import TestRabbitBroker

from shared import logs
from shared.logs import (
    CorrelationMiddleware,
    HumanFormatter,
    JsonFormatter,
    SecretRedactor,
    configure_logging,
    correlation,
    log_context,
    service_middleware,
)


def make_logger(redactor: SecretRedactor) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(redactor)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test-{id(redactor)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out


def test_secret_in_message_args_extras_and_exception_is_redacted() -> None:
    redactor = SecretRedactor()
    redactor.register("hunter2-password", "tok", None, "")
    logger, out = make_logger(redactor)
    logger.info("login %s failed", "hunter2-password", extra={"detail": "pw=hunter2-password"})
    try:
        raise ValueError("server echoed hunter2-password")
    except ValueError:
        logger.exception("boom")
    text = out.getvalue()
    assert "hunter2-password" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"] == "login *** failed" and lines[0]["detail"] == "pw=***"
    assert "***" in lines[1]["exception"]


def test_short_values_are_not_registered() -> None:
    redactor = SecretRedactor()
    redactor.register("ab")
    assert redactor.redact("abc ab") == "abc ab"


def test_records_inside_a_correlation_carry_its_id() -> None:
    logger, out = make_logger(SecretRedactor())
    with correlation("mail-42"):
        logger.info("inside")
        logger.info("explicit", extra={"correlation_id": "other"})
    logger.info("outside")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line.get("correlation_id") for line in lines] == ["mail-42", "other", None]


# --- one format per process ----------------------------------------------------------------

HUMAN_START = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S+ \S+: "
)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger without the process handler during the test, as it was afterwards."""
    root = logging.getLogger()
    saved, level, service = list(root.handlers), root.level, logs._Process.service
    root.handlers = [h for h in saved if not getattr(h, "_mailroom", False)]
    yield
    root.handlers, logs._Process.service = saved, service
    root.setLevel(level)


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("lib.thing", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_human_format_puts_context_first_and_quotes_values_with_spaces() -> None:
    line = HumanFormatter().format(
        record(
            "hello %s",
            "you",
            service="fetcher",
            error="no route",
            correlation_id="c-1",
            account="support",
            color_message="\x1b[1mhello\x1b[0m",
            message_id="",
        )
    )
    assert HUMAN_START.match(line), line
    assert line.endswith(
        'WARNING fetcher lib.thing: hello you account=support correlation_id=c-1 error="no route"'
    )


def test_human_format_indents_tracebacks_and_colours_only_when_asked() -> None:
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        failed = record("boom", exc_info=None)
        failed.exc_info = sys.exc_info()
    lines = HumanFormatter().format(failed).splitlines()
    assert HUMAN_START.match(lines[0]) and all(line.startswith("  ") for line in lines[1:])
    assert "\x1b[" not in "\n".join(lines)
    assert "\x1b[33mWARNING" in HumanFormatter(colour=True).format(record())


def test_colour_only_for_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert logs._wants_colour(Terminal()) and not logs._wants_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not logs._wants_colour(Terminal())


@pytest.mark.usefixtures("root_logging")
def test_library_records_go_through_the_one_handler_in_the_chosen_format() -> None:
    # A library that installed its own coloured handler (as FastStream does at import).
    library = logging.getLogger("test-library-with-own-handler")
    library.addHandler(logging.StreamHandler(io.StringIO()))
    library.propagate = False
    out = io.StringIO()
    handler = configure_logging("DEBUG", json_lines=True, service="fetcher", stream=out)
    assert library.handlers == [] and library.propagate
    library.info("from a library")
    configure_logging("DEBUG", json_lines=False, service="processor")
    library.info("now human")
    root = logging.getLogger()
    assert [h for h in root.handlers if getattr(h, "_mailroom", False)] == [handler]
    first, second = out.getvalue().splitlines()
    assert json.loads(first) | {"time": None} == {
        "time": None,
        "level": "INFO",
        "service": "fetcher",
        "logger": "test-library-with-own-handler",
        "message": "from a library",
    }
    assert HUMAN_START.match(second) and " processor test-library-with-own-handler: " in second


@pytest.mark.usefixtures("root_logging")
def test_context_names_service_account_and_mail_and_is_restored() -> None:
    out = io.StringIO()
    configure_logging("INFO", json_lines=True, service="config+fetcher", stream=out)
    log = logging.getLogger("test-context")
    with log_context(service="fetcher", account="support"):
        with log_context(correlation_id="mail-1"):
            log.info("inner")
        log.info("outer", extra={"account": "explicit"})
    log.info("process")
    inner, outer, process = (json.loads(line) for line in out.getvalue().splitlines())
    assert (inner["service"], inner["account"], inner["correlation_id"]) == (
        "fetcher",
        "support",
        "mail-1",
    )
    assert (outer["account"], "correlation_id" in outer) == ("explicit", False)
    assert process["service"] == "config+fetcher" and "account" not in process


@pytest.mark.usefixtures("root_logging")
async def test_a_consumer_logs_under_its_service_with_the_mail_and_account() -> None:
    out = io.StringIO()
    configure_logging("INFO", json_lines=True, service="all", stream=out)
    broker = RabbitBroker(logger=None)
    broker.add_middleware(CorrelationMiddleware)
    router = RabbitRouter()

    @router.subscriber("test-logs-queue")
    async def handle(body: object) -> None:
        logging.getLogger("test-consumer").info("handled")

    broker.include_router(router, middlewares=[service_middleware("processor")])
    async with TestRabbitBroker(broker):
        await broker.publish({"account": "support"}, "test-logs-queue", correlation_id="mail-7")
        await broker.publish(["no", "account"], "test-logs-queue", correlation_id="mail-8")
    handled = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["service"], r.get("account"), r["correlation_id"]) for r in handled] == [
        ("processor", "support", "mail-7"),
        ("processor", None, "mail-8"),
    ]


@pytest.mark.usefixtures("root_logging")
def test_debug_level_never_lets_pymongo_print_command_documents() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json_lines=True, stream=stream)
    logging.getLogger("pymongo.command").debug('{"insert": "users", "password_hash": "h"}')
    logging.getLogger("mailroom.test").debug("ours")
    assert "password_hash" not in stream.getvalue()
    assert "ours" in stream.getvalue()
