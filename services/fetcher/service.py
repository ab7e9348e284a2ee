"""The fetcher service's parts: no subscribers, one supervisor of per-account tasks."""

from __future__ import annotations

from services.fetcher.supervisor import Supervisor
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime) -> Service:
    """The fetcher: starts its account tasks once the broker is up, follows config reloads."""
    supervisor = Supervisor(rt)
    rt.on_config(supervisor.reconcile)
    return Service(name="fetcher", start=supervisor.start, stop=supervisor.stop, http_port=8026)
