"""The config API's routes and the console's pages, and the role each one needs, read from
the routes' dependencies (``services.config.api.deps.ROUTE_ROLES`` for the API,
``services.config.web.auth.ROLE_CHECKS`` for the pages), for the route-by-route tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from services.config.api.deps import ROUTE_ROLES
from services.config.web.auth import ROLE_CHECKS
from services.config.web.templates import CONSOLE


def is_page(path: str) -> bool:
    """Whether the path is the console's (or the root, which leads there)."""
    return path == "/" or path == CONSOLE or path.startswith(CONSOLE + "/")


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
    """API routes: (method, path template) → the role the route needs ("" when it needs no
    token)."""
    roles = {}
    for route in api_routes(api.routes):
        if is_page(route.path):
            continue
        calls = set(_calls(route.dependant))
        role = next((name for dep, name in ROUTE_ROLES if dep in calls), "")
        roles.update({(method, route.path): role for method in route.methods or ()})
    return roles


def page_roles(api: FastAPI) -> dict[tuple[str, str], str]:
    """Console pages and forms: (method, path template) → the role the page needs ("" when
    it needs no session: the sign-in page, the redirects to the console)."""
    roles = {}
    for route in api_routes(api.routes):
        if not is_page(route.path):
            continue
        calls = set(_calls(route.dependant))
        role = next((name for name, check in ROLE_CHECKS.items() if check in calls), "")
        roles.update({(method, route.path): role for method in route.methods or ()})
    return roles
