"""The one retry policy: exponential backoff up to a cap, a lifetime instead of a number of
attempts, and a state carried in headers so the delay never falls back (issue 14, defect 6)."""

from __future__ import annotations

import pytest
from pamqp.decode import field_table as field_table_decode
from pamqp.encode import field_table as field_table_encode

from shared.errors import Transient
from shared.retry import (
    ATTEMPT_HEADER,
    SINCE_HEADER,
    RetrySettings,
    RetryState,
    StagePolicy,
    tier_for,
    until_available,
)
from shared.topology import RETRY_TIERS


def test_the_delay_doubles_up_to_the_cap_and_never_falls_back() -> None:
    policy = StagePolicy(first_delay_s=5, cap_s=3600)
    delays = [tier_for(policy.delay(n)) for n in range(1, 30)]
    assert delays[:4] == [5, 10, 20, 60]  # 40 s waits in the next tier up
    assert delays == sorted(delays)
    assert delays[-1] == 3600 and max(delays) == RETRY_TIERS[-1]


def test_outgoing_mail_is_kept_five_days_and_an_outage_without_limit() -> None:
    settings = RetrySettings()
    assert settings.sender.lifetime_s == 5 * 86400 and settings.sender.cap_s == 3600
    assert settings.processor.lifetime_s is None
    assert not settings.sender.expired(since=1000.0, now=1000.0 + 4 * 86400)
    assert settings.sender.expired(since=1000.0, now=1000.0 + 5 * 86400)
    assert not settings.processor.expired(since=0.0, now=1e12)


def test_settings_per_stage_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_RETRY_SENDER__LIFETIME_S", "86400")
    monkeypatch.setenv("MAILROOM_RETRY_SENDER__CAP_S", "600")
    settings = RetrySettings()
    assert settings.sender.lifetime_s == 86400 and settings.sender.cap_s == 600
    assert settings.processor.cap_s == 300


def test_the_state_travels_in_the_headers() -> None:
    assert RetryState.of({}, now=50.0) == RetryState(attempt=0, since=50.0)
    state = RetryState.of({ATTEMPT_HEADER: 7, SINCE_HEADER: 10.5}, now=50.0)
    assert state == RetryState(attempt=7, since=10.5)
    assert RetryState.of({ATTEMPT_HEADER: "x"}, now=1.0).attempt == 0


def test_the_first_failure_survives_amqp_encoding_to_the_millisecond() -> None:
    # pamqp writes a Python float as a single-precision float: a timestamp came back up to
    # a minute off, so a lifetime expired late (or early).
    since = 1796520471.431973
    sent = RetryState(attempt=2, since=since).headers()
    _, decoded = field_table_decode(field_table_encode(sent))
    state = RetryState.of(decoded, now=since + 5)
    assert state.attempt == 2 and abs(state.since - since) < 0.001


async def test_until_available_waits_with_backoff_and_logs_each_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    calls = 0

    async def step() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise Transient("connection refused")
        return "up"

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    policy = StagePolicy(first_delay_s=1, cap_s=3)
    result = await until_available("MongoDB", "127.0.0.1:27017", step, policy=policy, sleep=sleep)
    assert result == "up" and waits == [1, 2, 3]
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.retry"]
    assert len(lines) == 3 and all("127.0.0.1:27017" in line for line in lines)
