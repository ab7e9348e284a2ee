"""The session's secret scan finds a leaked secret and reports it without showing it."""

from __future__ import annotations

import logging

from tests.secret_scan import LogRecorder, SecretScan

SECRET = "unit-scan-secret-value-42"


def test_a_secret_in_a_log_line_or_response_is_reported_by_kind_and_place() -> None:
    scan = SecretScan()
    scan.secret("IMAP password", SECRET)
    logger = logging.getLogger("scan-unit")
    logger.propagate = False
    logger.addHandler(LogRecorder(scan))
    logger.setLevel(logging.INFO)
    scan.test = "t::one"
    logger.info("login with %s failed", SECRET)
    scan.record("the API response to GET /accounts", '{"password_set": true}')
    assert [str(f) for f in scan.findings] == [
        "IMAP password appeared in a log line of scan-unit (test t::one)"
    ]
    assert all(SECRET not in str(f) for f in scan.findings)


def test_a_secret_registered_later_in_the_test_is_still_found_in_earlier_text() -> None:
    scan = SecretScan()
    scan.record("the output of `mailroom accounts list`", f"pw={SECRET}")
    assert scan.findings == []
    scan.secrets_in_request(f'{{"account": {{"client_secret": "{SECRET}"}}}}'.encode())
    scan.end_test()
    assert [f.kind for f in scan.findings] == ["client_secret sent to the config API"]
    scan.end_test()
    assert len(scan.findings) == 1


def test_a_static_credentials_token_sent_to_the_api_is_watched_for() -> None:
    scan = SecretScan()
    body = f'{{"name": "fastmail", "provider": "static", "token": "{SECRET}"}}'
    scan.secrets_in_request(body.encode())
    scan.secrets_in_request(f"csrf_token=x&provider=static&token={SECRET}".encode())
    scan.record("the API response to GET /credentials/fastmail", f'{{"token": "{SECRET}"}}')
    assert [f.kind for f in scan.findings] == ["token sent to the config API"]
