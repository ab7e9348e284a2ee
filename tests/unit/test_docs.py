"""The checked-in interface documents are what the code generates."""

from __future__ import annotations

import pytest

from services.docs import DOCS, asyncapi, openapi, render


@pytest.mark.parametrize(
    ("name", "generate"), [("asyncapi.json", asyncapi), ("openapi.json", openapi)]
)
def test_docs_are_current(name: str, generate: object) -> None:
    assert callable(generate)
    checked_in = (DOCS / name).read_text()
    assert render(generate()) == checked_in, f"docs/{name} is stale: run python -m services.docs"


def test_asyncapi_lists_every_message() -> None:
    channels = set(asyncapi()["channels"])
    for expected in (
        "processor.inbound",
        "sender.outbound",
        "processor.failed",
        "sender.failed",
        "publish mail.received",
        "publish case.created",
        "publish case.updated",
    ):
        assert expected in channels
