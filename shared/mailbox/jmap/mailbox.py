"""The JMAP mailbox adapter (RFC 8620 core, RFC 8621 mail) behind the mailbox seam.

- ``connect``: the session resource (``/.well-known/jmap`` or the configured URL), then
  ``Mailbox/get`` to find the folder (role ``inbox`` for INBOX, else by name or role).
- ``list_new``: with no cursor the account's start position (``Email/query`` in the folder,
  ``receivedAt`` ascending; ``since`` adds an ``after`` filter; ``new`` lists nothing); with a
  cursor ``Email/changes`` since its state, then ``Email/get`` of the changed ids for their
  folder membership. A server that cannot calculate the changes (state too old) gets a full
  resync: everything in the folder is listed again, under the same source keys (the email
  ids), so the fetcher skips what it stored before and nothing is lost.
- ``fetch``: the raw message is the email's blob, downloaded as a stream.
- ``mark_done``: ``Email/set`` with ``keywords/$seen``, a ``mailboxIds`` patch to
  ``move_to_folder``, or ``destroy``.
- ``wait_for_news``: the EventSource push channel when the session offers one, else polling
  the Email state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from shared.auth import CredentialHealth, TokenProvider
from shared.errors import Permanent, Transient
from shared.mailbox._tls import account_tls_context
from shared.mailbox.base import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.mailbox.jmap.client import CannotCalculateChanges, JmapClient, Json, auth_header
from shared.mailbox.jmap.cursor import (
    Cursor,
    after_second,
    find_mailbox,
    is_candidate,
    mailbox_paths,
    oldest_first,
)
from shared.models.config import IncomingAccount

log = logging.getLogger(__name__)

EMAIL_PROPERTIES = ["id", "blobId", "size", "receivedAt", "mailboxIds", "keywords"]
PAGE = 500
"""Ids per Email/query page and per Email/get (Cyrus allows 4,096 per get)."""
MAX_CHANGES = 2000
POLL_SECONDS = 2.0
"""How often wait_for_news asks for the Email state when the server offers no push."""
HEADER_END = b"\r\n\r\n"
PARALLEL_DOWNLOADS = 8
PARALLEL_BELOW = 1024 * 1024
"""Mails up to this size are downloaded ``PARALLEL_DOWNLOADS`` at a time."""


class JmapMailbox:
    """One folder of one JMAP account."""

    def __init__(
        self, account: IncomingAccount, *, timeout: float, tokens: TokenProvider | None
    ) -> None:
        self._account = account
        self._tokens = tokens
        if account.auth == "oauth2" and tokens is None:
            raise Permanent(f"account {account.name}: auth oauth2 needs a token provider")
        url = account.jmap_session_url
        verify = account_tls_context(account, where=url) if url.startswith("https://") else True
        self._client = JmapClient(
            url,
            user=account.username,
            auth=auth_header(account.username, account.password, tokens),
            timeout=timeout,
            verify=verify,
            refresh_auth=tokens.invalidate if tokens is not None else None,
        )
        self._mailbox_id = ""
        self._mailboxes: list[Json] = []
        self._state: str | None = None
        self._push_works = True

    @property
    def credential_health(self) -> CredentialHealth | None:
        """The token provider's credential health; None for Basic auth."""
        return self._tokens.health if self._tokens is not None else None

    @property
    def tokens(self) -> TokenProvider | None:
        """The token source (OAuth 2.0 or a named credential); None for Basic auth. The
        fetcher's round record tells a named credential of each accepted or refused login."""
        return self._tokens

    async def connect(self) -> MailboxStatus:
        """Fetch the session and find the folder; Permanent when it does not exist."""
        session = await self._client.connect()
        (result,) = await self._call(
            [["Mailbox/get", {"properties": ["name", "role", "parentId", "totalEmails"]}, "m"]]
        )
        self._mailboxes = list(result["list"])
        mailbox = find_mailbox(self._mailboxes, self._account.folder)
        if mailbox is None:
            raise Permanent(
                f"JMAP folder {self._account.folder!r} not found for {self._client.where}"
            )
        self._mailbox_id = str(mailbox["id"])
        return MailboxStatus(
            exists=mailbox.get("totalEmails"),
            supports_idle=session.event_source_url is not None and self._push_works,
        )

    async def folders(self) -> list[str]:
        """Every mailbox of the account by its full name (``Parent/Child``, what ``folder``
        and ``move_to_folder`` take), the inbox first as ``INBOX``."""
        await self._client.connect()
        (result,) = await self._call(
            [["Mailbox/get", {"properties": ["name", "role", "parentId"]}, "m"]]
        )
        return mailbox_paths(list(result["list"]))

    async def list_new(self, cursor: str | None) -> Listing:
        """New mail in the folder since ``cursor`` (or per the start position), oldest first."""
        if cursor is None:
            return await self._first_listing()
        stored = Cursor.load(cursor)
        try:
            created, updated, state = await self._changes(stored.state)
        except CannotCalculateChanges:
            log.warning(
                "JMAP server cannot calculate changes since state %s for account %s: "
                "listing the folder again (stored mail is skipped by its id)",
                stored.state,
                self._account.name,
            )
            return await self._full_listing(stored.floor)
        emails = await self._get(list(dict.fromkeys([*created, *updated])))
        fresh = set(created)
        chosen = [e for e in emails if is_candidate(e, self._mailbox_id, created=e["id"] in fresh)]
        return self._listing(oldest_first(chosen), state, stored.floor)

    async def _first_listing(self) -> Listing:
        position = self._account.start_position
        if position == "new":
            state = await self._current_state()
            return self._listing([], state, await self._newest_received())
        floor = None
        if position == "since" and self._account.start_date is not None:
            floor = f"{self._account.start_date.isoformat()}T00:00:00Z"
        return await self._full_listing(floor)

    async def _newest_received(self) -> str | None:
        """The second after the newest mail's ``receivedAt`` in the folder (None when
        empty): servers apply the ``after`` filter inclusively (Cyrus does)."""
        query = {
            "filter": {"inMailbox": self._mailbox_id},
            "sort": [{"property": "receivedAt", "isAscending": False}],
            "limit": 1,
        }
        _, got = await self._call(
            [
                ["Email/query", query, "q"],
                [
                    "Email/get",
                    {
                        "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                        "properties": ["receivedAt"],
                    },
                    "g",
                ],
            ]
        )
        newest = got.get("list") or []
        return after_second(str(newest[0]["receivedAt"])) if newest else None

    async def _full_listing(self, floor: str | None) -> Listing:
        # The state first: a mail arriving during the query is then listed again by the
        # next Email/changes (the fetcher skips its id), never missed.
        state = await self._current_state()
        query_filter: Json = {"inMailbox": self._mailbox_id}
        if floor is not None:
            query_filter["after"] = floor
        ids: list[str] = []
        while True:
            (result,) = await self._call(
                [
                    [
                        "Email/query",
                        {
                            "filter": query_filter,
                            "sort": [{"property": "receivedAt", "isAscending": True}],
                            "position": len(ids),
                            "limit": PAGE,
                        },
                        "q",
                    ]
                ]
            )
            page = [str(i) for i in result["ids"]]
            ids.extend(page)
            if len(page) < PAGE:
                break
        emails = await self._get(ids)
        return self._listing(oldest_first(emails), state, floor)

    def _listing(self, emails: list[Json], state: str, floor: str | None) -> Listing:
        self._state = state
        refs = [
            MessageRef(source_key=str(e["id"]), handle=str(e["blobId"]), size=e.get("size"))
            for e in emails
        ]
        keys = {r.source_key for r in refs}
        after = Cursor(state, floor).dump()

        def cursor_after(done: set[str]) -> str | None:
            # The state covers every listed mail: it may be stored only once all are done.
            return after if keys <= done else None

        # JMAP ids never change, also across moves: a mail is never stored under another key.
        return Listing(refs=refs, twins_possible=False, cursor_after=cursor_after)

    async def _current_state(self) -> str:
        (result,) = await self._call([["Email/get", {"ids": [], "properties": ["id"]}, "s"]])
        return str(result["state"])

    async def _changes(self, since: str) -> tuple[list[str], list[str], str]:
        created: list[str] = []
        updated: list[str] = []
        state = since
        while True:
            (result,) = await self._call(
                [["Email/changes", {"sinceState": state, "maxChanges": MAX_CHANGES}, "c"]]
            )
            created.extend(str(i) for i in result.get("created", []))
            updated.extend(str(i) for i in result.get("updated", []))
            state = str(result["newState"])
            if not result.get("hasMoreChanges"):
                return created, updated, state

    async def _get(self, ids: list[str]) -> list[Json]:
        emails: list[Json] = []
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            (result,) = await self._call(
                [["Email/get", {"ids": chunk, "properties": EMAIL_PROPERTIES}, "g"]]
            )
            emails.extend(result["list"])
        return emails

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        """Each mail's raw bytes, streamed from its blob, in order; over ``max_size`` only its
        header. Small mails are downloaded a few at a time (one HTTP request each: the
        round trips, not the bytes, bound a drain); big ones one by one, to bound memory."""
        pending: deque[tuple[MessageRef, asyncio.Task[FetchedMail]]] = deque()
        try:
            for ref in refs:
                small = ref.size is not None and ref.size <= PARALLEL_BELOW
                if not small:
                    while pending:
                        yield await pending.popleft()[1]
                    yield await self._download(ref, max_size)
                    continue
                pending.append((ref, asyncio.create_task(self._download(ref, max_size))))
                if len(pending) >= PARALLEL_DOWNLOADS:
                    yield await pending.popleft()[1]
            while pending:
                yield await pending.popleft()[1]
        finally:
            for _, task in pending:
                task.cancel()
            await asyncio.gather(*(t for _, t in pending), return_exceptions=True)

    async def _download(self, ref: MessageRef, max_size: int | None) -> FetchedMail:
        too_big = max_size is not None and ref.size is not None and ref.size > max_size
        data = bytearray()
        stream = self._client.download(str(ref.handle))
        try:
            async for chunk in stream:
                data += chunk
                if too_big and HEADER_END in data:
                    break
        finally:
            await stream.aclose()
        if too_big:
            end = data.find(HEADER_END)
            header = bytes(data[: end + len(HEADER_END)] if end >= 0 else data)
            return FetchedMail(ref=ref, data=header, complete=False)
        return FetchedMail(ref=ref, data=bytes(data))

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        """Flag, move or destroy the mails on the server (one Email/set, after ``guard``)."""
        if not refs:
            return
        ids = [r.source_key for r in refs]
        arguments: Json
        if disposal == "delete":
            arguments = {"destroy": ids}
        elif disposal == "seen":
            arguments = {"update": {i: {"keywords/$seen": True} for i in ids}}
        else:
            target = self._move_target()
            patch = {f"mailboxIds/{self._mailbox_id}": None, f"mailboxIds/{target}": True}
            arguments = {"update": {i: patch for i in ids}}
        await guard()
        (result,) = await self._call([["Email/set", arguments, "d"]])
        failed = {**(result.get("notUpdated") or {}), **(result.get("notDestroyed") or {})}
        # Gone already (another client, an earlier round cut short): nothing left to do.
        failed = {k: v for k, v in failed.items() if v.get("type") != "notFound"}
        if failed:
            first = next(iter(failed.values()))
            raise Transient(
                f"JMAP {disposal} of {len(failed)} mail(s) failed for {self._client.where}: "
                f"{first.get('type')} {first.get('description') or ''}".rstrip()
            )

    def _move_target(self) -> str:
        # move_to_folder arrives with the seam's IncomingAccount; read it defensively until then.
        folder = self._account.move_to_folder
        if not folder:
            raise Permanent(f"account {self._account.name}: disposal move needs move_to_folder")
        mailbox = find_mailbox(self._mailboxes, str(folder))
        if mailbox is None:
            raise Permanent(f"JMAP folder {folder!r} not found for {self._client.where}")
        return str(mailbox["id"])

    async def wait_for_news(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the Email state to move past the last listing."""
        known = self._state or await self._current_state()
        session = self._client.need_session()
        try:
            async with asyncio.timeout(timeout):
                if session.event_source_url is not None and self._push_works:
                    return await self._pushed(known)
                return await self._polled(known)
        except TimeoutError:
            return False

    async def _pushed(self, known: str) -> bool:
        account = self._client.need_session().account_id
        events = 0
        async for event in self._client.events("Email"):
            events += 1
            state = event.get("changed", {}).get(account, {}).get("Email")
            if state is not None and state != known:
                return True
        if not events:
            # The channel closed without a word (Cyrus without its idled daemon answers 204
            # No Content): the server announces push it does not give, so poll from now on.
            log.info("JMAP push of account %s gives no events: polling", self._account.name)
            self._push_works = False
            return await self._polled(known)
        # The server closed the channel: let the caller list (and come back).
        return True

    async def _polled(self, known: str) -> bool:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if await self._current_state() != known:
                return True

    async def close(self) -> None:
        """Close the HTTP connections."""
        with contextlib.suppress(Exception):
            await self._client.close()

    async def _call(self, calls: list[list[Any]]) -> list[Json]:
        started = time.monotonic()
        results = await self._client.call(calls)
        log.debug(
            "JMAP %s for %s in %.0f ms",
            ",".join(c[0] for c in calls),
            self._account.name,
            (time.monotonic() - started) * 1000,
        )
        return results


def open_jmap_mailbox(
    account: IncomingAccount, *, timeout: float, tokens: TokenProvider | None
) -> JmapMailbox:
    """The JMAP adapter for ``account`` (registered under protocol ``JMAP``)."""
    return JmapMailbox(account, timeout=timeout, tokens=tokens)
