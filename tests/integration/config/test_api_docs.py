"""``/docs`` and ``/redoc`` work without internet: every file they load is served by the
config service itself, and nothing they reference points off the host. They and the OpenAPI
document need a token unless ``MAILROOM_API_DOCS_PUBLIC`` opens them (issue 14, defect 8)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from services.config.api.main import create_api
from shared.runtime import Runtime
from shared.settings import SharedSettings

BASE = "http://config"
REFERENCE = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'|spec-url="([^"]+)\""""
)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")


@pytest.fixture(autouse=True)
def public_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages opened, as on a development machine (the last test closes them again)."""
    monkeypatch.setenv("MAILROOM_API_DOCS_PUBLIC", "true")


def _client() -> httpx.AsyncClient:
    api = create_api(Runtime(SharedSettings()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=BASE)


async def _references(client: httpx.AsyncClient, page: str) -> list[str]:
    response = await client.get(page)
    assert response.status_code == 200, page
    assert "cdn" not in response.text.lower() and "fonts.googleapis" not in response.text
    found = [next(g for g in m.groups() if g) for m in REFERENCE.finditer(response.text)]
    assert found, f"{page} references nothing"
    return [urljoin(BASE + page, ref) for ref in found]


async def test_docs_pages_load_only_files_of_this_host() -> None:
    async with _client() as client:
        for page, expected in (
            ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
            ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
        ):
            urls = await _references(client, page)
            assert {u.rsplit("/", 1)[1] for u in urls} == expected, page
            for url in urls:
                assert urlsplit(url).netloc == urlsplit(BASE).netloc, f"{page} loads {url}"
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert len(asset.content) > 0, url
                if url.endswith(".css"):
                    for ref in CSS_URL.findall(asset.text):
                        assert ref.startswith("data:") or not urlsplit(ref).netloc, ref
        spec = (await client.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.1")
        assert "/docs" not in spec["paths"] and "/redoc" not in spec["paths"]


async def test_swagger_ui_asks_no_online_validator() -> None:
    async with _client() as client:
        page = (await client.get("/docs")).text
    assert '"validatorUrl": null' in page


async def test_the_documentation_is_closed_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILROOM_API_DOCS_PUBLIC")
    async with _client() as client:  # no token (and no user store: refused either way)
        for page in ("/docs", "/redoc", "/openapi.json"):
            response = await client.get(page)
            assert response.status_code in (401, 503), page
            assert "swagger" not in response.text.lower() and '"paths"' not in response.text
