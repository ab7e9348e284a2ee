"""The published interface documents: OpenAPI of the config API, AsyncAPI of every message.

    python -m services.docs          # rewrites docs/openapi.json and docs/asyncapi.json

A test fails when the checked-in documents differ from what the code generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faststream.rabbit import RabbitRouter
from faststream.specification import AsyncAPI

from services.config.service import build as config_service
from services.fetcher.service import build as fetcher_service
from services.processor.service import build as processor_service
from services.sender.service import build as sender_service
from shared.models.messages import CaseEvent, MailReceived, OutgoingMail
from shared.service import Stack
from shared.settings import SharedSettings
from shared.topology import CASE_CREATED, CASE_UPDATED, MAIL_EXCHANGE, MAIL_OUTGOING, MAIL_RECEIVED

DOCS = Path(__file__).resolve().parents[1] / "docs"
SETTINGS = SharedSettings(instance_id="docs")


def _publishers() -> RabbitRouter:
    # Publishing happens through shared.broker.publish; these declarations only describe
    # what each service sends, so integrators see every message in one document.
    router = RabbitRouter()
    published: list[tuple[str, type[Any], str]] = [
        (MAIL_RECEIVED, MailReceived, "fetcher: a raw mail was stored"),
        (MAIL_OUTGOING, OutgoingMail, "processor and the case system: a mail to send"),
        (CASE_CREATED, CaseEvent, "processor: a mail opened a case"),
        (CASE_UPDATED, CaseEvent, "processor: a mail joined a case"),
    ]
    for key, model, description in published:
        router.publisher(
            routing_key=key,
            exchange=MAIL_EXCHANGE,
            title=f"publish {key}",
            description=description,
            schema=model,
        )
    return router


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document of all four services."""
    stack = Stack([config_service, fetcher_service, processor_service, sender_service], SETTINGS)
    stack.rt.broker.include_router(_publishers())
    spec = AsyncAPI(stack.rt.broker, title="Mailroom", version="0.1.0").to_specification()
    document: dict[str, Any] = json.loads(spec.to_json())
    return document


def openapi() -> dict[str, Any]:
    """The OpenAPI document of the config service's HTTP API."""
    from services.config.api.main import create_api
    from shared.runtime import Runtime

    return create_api(Runtime(SETTINGS)).openapi()


def render(document: dict[str, Any]) -> str:
    """The stable text form that is checked in."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Rewrite the checked-in documents."""
    DOCS.mkdir(exist_ok=True)
    (DOCS / "asyncapi.json").write_text(render(asyncapi()))
    (DOCS / "openapi.json").write_text(render(openapi()))


if __name__ == "__main__":
    main()
