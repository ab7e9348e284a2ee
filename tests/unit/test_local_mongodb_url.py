"""The local default's MongoDB URL: the stand-in gets its fast option, a user's URL is kept.

The stand-in's retryable-write bookkeeping scans a growing table on every write (issue 18:
the pipeline went from 11 to 55 mail/s without it), so the local stand-in's URL turns it off;
a MongoDB the user names is used exactly as given, options and all.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from deploy.local.servers import standin_url, start_mongodb
from deploy.local.stack import _mongodb


def test_the_local_standin_url_turns_retryable_writes_off() -> None:
    url = urlsplit(standin_url(27999))
    assert (url.hostname, url.port) == ("127.0.0.1", 27999)
    assert parse_qs(url.query) == {"retryWrites": ["false"]}


@pytest.mark.parametrize(
    "given",
    ["mongodb://db.example.org:27017/", "mongodb+srv://u:p@cluster.example.org/?retryWrites=true"],
)
def test_a_users_mongodb_url_is_used_as_given(
    given: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MAILROOM_MONGODB_URL", given)
    assert _mongodb(tmp_path).url == given
    monkeypatch.setenv("MONGODB_URL", given)
    assert start_mongodb(tmp_path).url == given
    assert not list(tmp_path.iterdir()), "nothing started for a server the user runs"
