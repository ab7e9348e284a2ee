"""The fetcher service's parts: no subscribers; its fleet membership drives a supervisor of
per-account tasks for the accounts whose lease it holds."""

from __future__ import annotations

import secrets

from services.fetcher.deps import FetcherDeps
from services.fetcher.fence import Holder
from services.fetcher.fleet import Fleet
from services.fetcher.settings import FetcherSettings
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime, settings: FetcherSettings | None = None) -> Service:
    """The fetcher: joins the fleet once the broker is up, rebalances on config reloads."""
    holder = Holder((settings or FetcherSettings()).instance_id(), secrets.token_hex(8))
    fleet = Fleet(FetcherDeps.of(rt), holder)
    rt.on_config(fleet.config_changed)
    return Service(name="fetcher", start=fleet.start, stop=fleet.stop, http_port=8026)
