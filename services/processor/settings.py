"""The processor's process settings (environment, ``MAILROOM_PROCESSOR_*``).

How much one processor takes on at once is a property of the process (its cores, its memory),
not of the system: it is set where the process is started, like the broker and store URLs.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INLINE_PARSE_BYTES = 64 * 1024
"""Mails up to this size are parsed on the event loop (the default of the setting below)."""


class ProcessorProcessSettings(BaseSettings):
    """Prefetch, concurrency and where parsing runs."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_PROCESSOR_", env_ignore_empty=True, extra="ignore"
    )

    prefetch: int = Field(default=32, ge=1, le=1000)
    """Unacknowledged mails RabbitMQ hands this processor at once: a burst waits in RabbitMQ,
    not in memory, and a crash returns at most this many mails to the queue."""
    concurrency: int = Field(default=32, ge=1, le=1000)
    """Mails processed at the same moment (at most ``prefetch``: more could not arrive).

    Measured end to end on the stand-in (``bench/e2e.py``, 3,000 mails): with the store's
    group commit, more mails at once means more of them in each command. 16 / 32 / 64 gave
    4.39 / 2.73 / 1.77 processor commands per mail, 7.0 / 6.0 / 5.6 CPU-seconds per 1,000
    mails and 45 / 47 / 48 mail/s (the stand-in's CPU caps the rate). 32: most of the gain,
    while a crash returns half as many mails as 64 would, and fewer big mails share memory."""
    inline_parse_bytes: int = Field(default=INLINE_PARSE_BYTES, ge=0)
    """Mails up to this size are parsed on the event loop (a thread hop cost more than the
    parse); bigger ones in a thread, so that no mail stalls the loop."""

    @model_validator(mode="after")
    def _concurrency_within_prefetch(self) -> ProcessorProcessSettings:
        if self.concurrency > self.prefetch:
            raise ValueError(
                "MAILROOM_PROCESSOR_CONCURRENCY cannot exceed MAILROOM_PROCESSOR_PREFETCH: "
                "no more mails than prefetched can be processed at once"
            )
        return self
