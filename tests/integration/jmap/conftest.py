"""A private Cyrus serving JMAP for the session (users created per test), with an SMTP sink
behind its EmailSubmission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.cyrus import Cyrus, start_cyrus
from tests.integration.jmap.relay import Relay, start_relay


@pytest.fixture(scope="session")
def relay() -> Iterator[Relay]:
    """The SMTP server Cyrus hands submitted mail to."""
    handler, controller = start_relay()
    yield handler
    controller.stop()


@pytest.fixture(scope="session")
def cyrus(state_dir: Path, relay: Relay) -> Iterator[Cyrus]:
    """Cyrus 3.6 with JMAP on 127.0.0.1; EmailSubmission relays to ``relay``."""
    server = start_cyrus(state_dir, {}, smtp_port=relay.port)
    yield server
    server.stop()
