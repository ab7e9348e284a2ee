"""Helpers of the end-to-end tests; the config stack and its API client are in tests/conftest."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from services.processor.scripts import load_script
from shared.models.config import ProcessorSettings
from shared.settings import SharedSettings
from tests.support import server_settings

DEFAULT_SCRIPTS = [s.name for s in ProcessorSettings().incoming_scripts if s.enabled]
"""The incoming-mail scripts enabled by default, in their order."""


def settings(rabbit_url: str, mongo_url: str, db: str, instance: str) -> SharedSettings:
    """Process settings of one stack of the end-to-end tests."""
    return server_settings(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=db,
        instance=instance,
    )


def sink_mails_to(sink: Any, address: str) -> list[EmailMessage]:
    """Mails the SMTP sink received for ``address``."""
    return [m for m in sink.messages() if address in str(m.get("X-Sink-Rcpt-To", ""))]


async def ok(response: httpx.Response) -> Any:
    """The JSON of a successful response (fails the test with the body otherwise)."""
    assert response.status_code < 300, response.text
    return response.json()


def install_script(directory: Path, name: str, source: str) -> Iterator[str]:
    """Install an incoming-mail script like a third-party package: module ``mailroom_<name>``
    with ``source``, a distribution with an entry point ``name`` in the
    ``mailroom.incoming_scripts`` group, found on sys.path. Yields ``name`` (a fixture's body:
    ``yield from``); afterwards it is off sys.path and the script cache is cleared."""
    module = f"mailroom_{name}"
    (directory / f"{module}.py").write_text(textwrap.dedent(source))
    dist = directory / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: mailroom-{name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[mailroom.incoming_scripts]\n{name} = {module}:run\n")
    sys.path.insert(0, str(directory))
    yield name
    sys.path.remove(str(directory))
    load_script.cache_clear()
