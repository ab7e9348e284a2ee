"""Starting the local Cyrus survives the race that made it fail under load: the port picked
as free is taken before master binds it (master exits 78); the start retries on a fresh port."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from deploy.local import cyrus as cyrus_module
from deploy.local._proc import free_ports

pytestmark = pytest.mark.integration


def test_a_taken_port_makes_the_start_retry_on_another(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = int(taken.getsockname()[1])
        picks = iter([[held]])
        monkeypatch.setattr(
            cyrus_module, "free_ports", lambda count: next(picks, None) or free_ports(count)
        )
        server = cyrus_module.start_cyrus(
            Path(tempfile.mkdtemp(dir=state_dir)), {"carol": "carol-pw-1"}
        )
        try:
            assert server.http_port != held
            mailboxes = server.call("carol", "Mailbox/get", {"properties": ["role"]})["list"]
            assert {m["role"] for m in mailboxes} >= {"inbox", "archive", "sent", "trash"}
        finally:
            server.stop()
