"""The processor's process settings come from ``MAILROOM_PROCESSOR_*``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.processor.settings import ProcessorProcessSettings


def test_prefetch_and_concurrency_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILROOM_PROCESSOR_PREFETCH", "40")
    monkeypatch.setenv("MAILROOM_PROCESSOR_CONCURRENCY", "8")
    settings = ProcessorProcessSettings()
    assert (settings.prefetch, settings.concurrency) == (40, 8)


def test_more_concurrency_than_prefetch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_PROCESSOR_PREFETCH", "4")
    monkeypatch.setenv("MAILROOM_PROCESSOR_CONCURRENCY", "8")
    with pytest.raises(ValidationError, match="cannot exceed MAILROOM_PROCESSOR_PREFETCH"):
        ProcessorProcessSettings()
