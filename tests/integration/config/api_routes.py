"""The config API's routes and the role each one needs, read from the routes' dependencies
(``services.config.api.deps.ROUTE_ROLES``), for the route-by-route tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from services.config.api.deps import ROUTE_ROLES


def _calls(dependant: Dependant) -> Iterator[object]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, also those of included routers (FastAPI keeps an included router as a
    wrapper holding it)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def route_roles(api: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path template) → the role the route needs ("" when it needs no token)."""
    roles = {}
    for route in api_routes(api.routes):
        calls = set(_calls(route.dependant))
        role = next((name for dep, name in ROUTE_ROLES if dep in calls), "")
        roles.update({(method, route.path): role for method in route.methods or ()})
    return roles
