"""Logs never contain a registered secret, wherever it hides in the record."""

from __future__ import annotations

import io
import json
import logging

from shared.logs import JsonFormatter, SecretRedactor, correlation


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
