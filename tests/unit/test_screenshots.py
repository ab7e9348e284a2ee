"""The pure parts of ``make screenshots``: which pages, under which file names."""

from __future__ import annotations

from deploy.local.seed import Seeded
from deploy.screenshots import (
    DETAILS,
    NAV_PATHS,
    SIGNIN,
    WIDTHS,
    Shot,
    file_name,
    page_name,
    pages,
    shots,
)
from services.config.web.templates import NAV

SEEDED = Seeded(
    account="support",
    credential="m365-helpdesk",
    case=10001,
    failed="processor:abc",
    outbox="ack-1",
)


def test_a_page_is_named_by_its_path_below_the_console() -> None:
    assert page_name("/console/health") == "health"
    assert page_name("/console/email/accounts") == "email-accounts"
    assert page_name("/console/failed/processor:abc") == "failed-processor-abc"
    assert page_name("/console/") == "home"


def test_each_width_has_its_own_file() -> None:
    shot = Shot("email-accounts", "/console/email/accounts")
    assert [file_name(shot, width) for width in WIDTHS] == [
        "email-accounts-1280.png",
        "email-accounts-390.png",
    ]


def test_the_sign_in_comes_first_then_every_navigation_page_then_the_details() -> None:
    found = pages()
    assert found[0] == Shot("signin", SIGNIN)
    assert [s.path for s in found[1 : 1 + len(NAV)]] == [href for _, href, _ in NAV]
    assert [s.name for s in found[1 + len(NAV) :]] == [name for name, _ in DETAILS]


def test_a_page_named_twice_is_shot_once() -> None:
    found = pages([*NAV_PATHS, NAV_PATHS[0]])
    assert len({s.path for s in found}) == len(found)
    assert len({s.name for s in found}) == len(found)


def test_every_detail_page_takes_only_ids_the_seed_provides() -> None:
    filled = shots({**SEEDED.ids(), "user": "admin"})
    assert all("{" not in s.path for s in filled)
    assert Shot("case", "/console/cases/10001") in filled
    assert Shot("failed-mail", "/console/failed/processor:abc") in filled


def test_every_list_of_the_navigation_has_one_of_its_detail_pages_shot() -> None:
    lists = [href for href in NAV_PATHS if not href.endswith("/health")]
    details = [template for _, template in DETAILS]
    missing = [href for href in lists if not any(t.startswith(f"{href}/{{") for t in details)]
    assert missing == []
