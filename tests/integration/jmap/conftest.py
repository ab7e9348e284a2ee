"""A private Cyrus serving JMAP for the session (users created per test), with an SMTP sink
behind its EmailSubmission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.cyrus import Cyrus, start_cyrus
from deploy.local.servers import SmtpSink


@pytest.fixture(scope="session")
def cyrus(state_dir: Path, smtp_sink: SmtpSink) -> Iterator[Cyrus]:
    """Cyrus 3.6 with JMAP on 127.0.0.1; EmailSubmission relays to ``smtp_sink``."""
    server = start_cyrus(state_dir, {}, smtp_port=smtp_sink.port)
    yield server
    server.stop()
