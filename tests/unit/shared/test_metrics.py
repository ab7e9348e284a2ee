"""The metric helpers write the series operators alert on, under the documented names."""

from __future__ import annotations

from shared import metrics


def value(name: str, labels: dict[str, str] | None = None) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if found is None else found


def test_every_series_is_named_mailroom() -> None:
    names = {m.name for m in metrics.REGISTRY.collect()}
    assert names and all(name.startswith("mailroom_") for name in names)


def test_fetch_errors_count_and_the_streak_resets() -> None:
    before = value("mailroom_fetch_errors_total", {"account": "unit-a"})
    metrics.fetch_failed("unit-a", 1)
    metrics.fetch_failed("unit-a", 2)
    assert value("mailroom_fetch_errors_total", {"account": "unit-a"}) == before + 2
    assert value("mailroom_account_consecutive_errors", {"account": "unit-a"}) == 2
    metrics.fetch_recovered("unit-a")
    assert value("mailroom_account_consecutive_errors", {"account": "unit-a"}) == 0


def test_script_decisions_map_to_processed_outcomes() -> None:
    outcomes = ("new_case", "follow_up", "dropped", "failed")
    before = {o: value("mailroom_mails_processed_total", {"outcome": o}) for o in outcomes}
    for action in ("new_case", "attach", "drop", "reject"):
        metrics.mail_decided(action)
    for outcome in outcomes:
        assert value("mailroom_mails_processed_total", {"outcome": outcome}) == before[outcome] + 1


def test_a_delivery_waiting_for_a_retry_counts_as_deferred() -> None:
    before = value("mailroom_mails_sent_total", {"outcome": "deferred"})
    metrics.mail_delivered("queued", retry=True)
    metrics.mail_delivered("sent", retry=True)
    assert value("mailroom_mails_sent_total", {"outcome": "deferred"}) == before + 2
    sent = value("mailroom_mails_sent_total", {"outcome": "sent"})
    metrics.mail_delivered("sent", retry=False)
    assert value("mailroom_mails_sent_total", {"outcome": "sent"}) == sent + 1


def test_render_is_prometheus_text() -> None:
    metrics.lease_changed("acquired")
    metrics.owned_accounts(3)
    text = metrics.render().decode()
    assert "# TYPE mailroom_fetcher_lease_changes_total counter" in text
    assert "mailroom_fetcher_owned_accounts 3.0" in text
