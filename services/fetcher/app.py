"""Wiring only: ``faststream run services.fetcher.app:app``."""

from __future__ import annotations

from typing import Any

from services.fetcher.service import build
from shared.service import lazy_app

create_app = lazy_app(build)


def __getattr__(name: str) -> Any:
    # Built on first access, so importing this module reads no settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
