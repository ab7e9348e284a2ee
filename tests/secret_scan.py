"""A session-wide check that no secret used by the tests leaks into what Mailroom writes.

Collected while the suite runs: every log record (rendered as the services render it, after
the redaction the services apply), every response body of the config API (``api_client``)
and every output of the ``mailroom`` CLI (``support_cli.mailroom``). Checked against every
secret the tests configure: the fixed ones of ``tests.support`` and whatever secret a test
sends to the API (password, client secret, passphrase fields) or to the CLI on stdin.

A finding names the kind of secret, where it appeared and in which test; never the secret.
Texts are checked when they appear and again at the end of their test (a secret may be
registered after the text that leaks it), then dropped, so memory stays bounded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest

from shared.logs import REDACTOR, JsonFormatter

SECRET_FIELDS = frozenset(
    {"password", "client_secret", "passphrase", "secret_key", "token", "service_account_key"}
)
"""Request-body fields whose values are secrets."""


@dataclass(frozen=True)
class Finding:
    """One secret seen where it must not be."""

    kind: str
    where: str
    test: str

    def __str__(self) -> str:
        return f"{self.kind} appeared in {self.where} (test {self.test})"


@dataclass
class SecretScan:
    """The collector; one instance (``SCAN``) serves the whole session."""

    secrets: dict[str, str] = field(default_factory=dict)
    """Secret value → its kind."""
    findings: list[Finding] = field(default_factory=list)
    test: str = "session setup"
    _texts: list[tuple[str, str]] = field(default_factory=list)

    def secret(self, kind: str, value: str) -> str:
        """Register a secret (returns it, so constants can be defined through it)."""
        if value and value not in self.secrets:
            self.secrets[value] = kind
        return value

    def record(self, where: str, text: str) -> None:
        """Check ``text`` now and keep it for the end of the running test."""
        self._check(where, text)
        self._texts.append((where, text))

    def secrets_in_request(self, body: bytes) -> None:
        """Register the secret fields of a JSON or form request body."""
        try:
            data = json.loads(body)
        except ValueError:
            data = dict(parse_qsl(body.decode("latin-1")))
        for name, value in _walk(data):
            if name in SECRET_FIELDS and isinstance(value, str) and len(value) >= 6:
                self.secret(f"{name} sent to the config API", value)

    def _check(self, where: str, text: str) -> None:
        for value, kind in self.secrets.items():
            if value in text:
                finding = Finding(kind=kind, where=where, test=self.test)
                if finding not in self.findings:
                    self.findings.append(finding)

    def end_test(self) -> None:
        """Check the running test's texts against every secret known now, then drop them."""
        for where, text in self._texts:
            self._check(where, text)
        self._texts.clear()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        """Attribute what is recorded to the running test."""
        self.test = item.nodeid
        yield
        self.end_test()
        self.test = "between tests"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Fail the session when a secret was seen."""
        self.end_test()
        if self.findings:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """List the findings (kinds and places, never the secrets)."""
        if not self.findings:
            return
        terminalreporter.section("secret scan: secrets leaked", red=True)
        for finding in self.findings:
            terminalreporter.line(str(finding))


def _walk(data: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(data, list):
        for item in data:
            yield from _walk(item)


class LogRecorder(logging.Handler):
    """Renders every record as the services do (redacted JSON) and records it."""

    def __init__(self, scan: SecretScan) -> None:
        super().__init__(logging.NOTSET)
        self.scan = scan
        self.addFilter(REDACTOR)
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        """Record the rendered line."""
        try:
            self.scan.record(f"a log line of {record.name}", self.format(record))
        except Exception:  # a logging handler must never raise into the code that logs
            self.handleError(record)


SCAN = SecretScan()
