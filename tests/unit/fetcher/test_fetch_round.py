"""fetch_once on fakes, without servers: a mail announced by an earlier round that stopped
before marking it done is let go only by a round that still holds the account's lease."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import cast

import pytest
from faststream.rabbit import RabbitBroker

from services.fetcher.deps import FetcherDeps, FetcherRepos
from services.fetcher.fence import NO_FENCE
from services.fetcher.ingest import fetch_once
from shared.errors import LeaseLost
from shared.mailbox import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.models.config import GlobalSettings, IncomingAccount, SystemConfig
from shared.models.records import FetchState, RawEmail, RawStatus
from shared.store import FetcherRepo, FetchStateRepo, LeaseRepo, RawEmailRepo
from shared.store.account_health import AccountHealthRepo
from shared.store.credentials import CredentialRepo

REF = MessageRef(source_key="7:1", handle=1)
DATA = b"Message-ID: <one@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"


class Repos:
    """The raw-mail and fetch-state repositories a round uses, in memory."""

    def __init__(self) -> None:
        self.raw: dict[str, RawEmail] = {}
        self.cursor: str | None = None

    async def get(self, *, account: str, folder: str) -> FetchState:
        return FetchState(account=account, folder=folder, cursor=self.cursor)

    async def save_cursor(
        self, *, account: str, folder: str, cursor: str, fence: int | None = None
    ) -> None:
        self.cursor = cursor

    async def find_twins(
        self, *, account: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RawEmail]:
        return {}

    async def insert_many(
        self, *, records: Sequence[tuple[RawEmail, bytes]]
    ) -> list[tuple[RawEmail, bool]]:
        result = []
        for record, _ in records:
            stored = self.raw.setdefault(record.source_key, record)
            result.append((stored, stored is record))
        return result

    async def set_status_many(
        self, *, raw_ids: Sequence[str], status: RawStatus, only_from: tuple[RawStatus, ...] = ()
    ) -> int:
        return 0


class OneMail:
    """A mailbox listing one mail, recording what was marked done."""

    def __init__(self) -> None:
        self.done: list[tuple[list[str], Disposal]] = []

    async def connect(self) -> MailboxStatus:
        return MailboxStatus(exists=1)

    async def list_new(self, cursor: str | None) -> Listing:
        def cursor_after(done: set[str]) -> str | None:
            return "7:1" if REF.source_key in done else None

        refs = [] if cursor == "7:1" else [REF]
        return Listing(refs=refs, twins_possible=False, cursor_after=cursor_after)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        for ref in refs:
            yield FetchedMail(ref=ref, data=DATA)

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        await guard()
        self.done.append(([ref.source_key for ref in refs], disposal))

    async def wait_for_news(self, timeout: float) -> bool:
        return True

    async def close(self) -> None:
        return None


class LostLease:
    """The fence of a round whose lease another instance took meanwhile."""

    @property
    def token(self) -> int | None:
        return 3

    async def check(self) -> None:
        raise LeaseLost("acct: lease token 3 no longer held")

    async def guard(self) -> None:
        await self.check()


async def no_alert(credential: str) -> None:
    return None


async def test_a_round_without_its_lease_lets_nothing_go() -> None:
    repos = Repos()
    account = IncomingAccount(name="acct", host="imap.example.org", username="u", password="pw")
    current = [SystemConfig(accounts={"acct": account})]
    deps = FetcherDeps(
        repos=lambda: FetcherRepos(
            raw_emails=cast(RawEmailRepo, repos),
            fetch_state=cast(FetchStateRepo, repos),
            # Not touched by a round (health, leases and heartbeats are the supervisor's).
            account_health=cast(AccountHealthRepo, None),
            leases=cast(LeaseRepo, None),
            fetchers=cast(FetcherRepo, None),
        ),
        publisher=RabbitBroker(),  # never used: the mail was announced before
        config=lambda: current[0],
        credentials=lambda: cast(CredentialRepo, None),
        on_refused=no_alert,
    )
    # An earlier round stored and announced the mail, then stopped before marking it done.
    repos.raw["7:1"] = RawEmail(
        account="acct", source_key="7:1", folder="INBOX", size=1, sha256="x", status="announced"
    )
    mailbox = OneMail()

    with pytest.raises(LeaseLost):
        await fetch_once(deps, account, mailbox, fence=LostLease())
    assert mailbox.done == [] and repos.cursor is None

    # The configuration read is the current one: a change since the build counts.
    current[0] = current[0].model_copy(
        update={"settings": GlobalSettings(delete_read_messages=True)}
    )
    assert await fetch_once(deps, account, mailbox, fence=NO_FENCE) == 0
    assert mailbox.done == [(["7:1"], "delete")] and repos.cursor == "7:1"
