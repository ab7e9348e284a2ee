"""What a page answers besides itself: a redirect after a form (with a one-time message), and
the error page every refused or failed request of the console gets."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.config.web.auth import Visitor
from services.config.web.templates import CONSOLE, FLASH, FLASH_ERROR, render


def after_post(request: Request, url: str, message: str = "", *, error: bool = False) -> Response:
    """Post/Redirect/Get: send the browser to ``url`` (303) to show ``message`` once.
    An htmx request gets ``HX-Redirect``, which makes htmx load the page the same way."""
    response: Response
    if request.headers.get("HX-Request") == "true":
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if message:
        value = (FLASH_ERROR if error else "") + message[:500]
        response.set_cookie(
            FLASH,
            quote(value),
            path=CONSOLE,
            httponly=True,
            samesite="strict",
            secure=_https(request),
        )
    return response


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def is_console(request: Request) -> bool:
    """Whether the request is for a console page (its errors are pages, not JSON)."""
    return request.url.path == CONSOLE or request.url.path.startswith(CONSOLE + "/")


HEADINGS = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Not accepted",
    500: "Something went wrong",
    503: "A server is not answering",
}


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """The console's error page: what went wrong, in the API's words, and a way back."""
    visitor = getattr(request.state, "visitor", None)
    back = request.headers.get("referer", "")
    home = str(request.base_url).rstrip("/") + CONSOLE
    return render(
        request,
        "error.html",
        visitor if isinstance(visitor, Visitor) else None,
        status_code=status,
        heading=HEADINGS.get(status, "Error"),
        detail=detail,
        back=back if back.startswith(home) else CONSOLE + "/",
    )


def signin_redirect(request: Request, next_url: str) -> Response:
    """To the sign-in page, coming back to ``next_url`` after."""
    url = f"{CONSOLE}/signin?next={quote(next_url)}"
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
