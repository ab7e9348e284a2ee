"""The Microsoft Graph mailbox adapter: one folder of a user's or a shared mailbox.

- Cursor: JSON ``{"folder": <folder id>, "link": <delta link>}``; the link is Graph's
  ``@odata.deltaLink`` (or, when a round stopped at ``MAX_LISTED`` items, the
  ``@odata.nextLink`` to go on from). A cursor of another folder (the account's folder was
  changed) counts as none.
- ``list_new``: the folder's message delta with ``changeType=created`` (mail that came into
  the folder; read flags set and mail moved out are not news), oldest first by
  ``receivedDateTime``. Never fetched: ``start_position`` ``all`` takes the whole folder,
  ``since`` adds ``$filter=receivedDateTime ge <start_date>``, ``new`` walks the delta to
  its end and takes nothing. ``Prefer: IdType="ImmutableId"`` makes the ids (the source
  keys) survive moves inside the mailbox.
- ``fetch``: ``/messages/{id}/$value`` streamed; above ``max_size`` only the header block.
- ``mark_done``: ``seen`` PATCHes ``isRead``; ``move`` POSTs ``move`` to the account's
  ``move_to_folder`` (looked up by display name in the folder list); ``delete`` DELETEs
  (Exchange keeps it in Deleted Items). A mail already gone (404) counts as done.
- ``wait_for_news``: the delta link polled every ``POLL_S`` seconds (Graph's change
  notifications need a public HTTPS endpoint, which a fetcher behind a firewall lacks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from shared.auth import TokenProvider
from shared.errors import Permanent
from shared.mailbox.base import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.mailbox.graph.client import Gone, GraphClient
from shared.models.config import IncomingAccount

log = logging.getLogger(__name__)
PAGE_SIZE = 100
"""Messages per delta page asked for (``Prefer: odata.maxpagesize``)."""
MAX_LISTED = 1000
"""Messages one ``list_new`` returns at most; the rest come in the next round."""
POLL_S = 2.0
"""Seconds between two delta polls in ``wait_for_news``."""
DONE_PARALLEL = 4
"""Disposal requests in flight at once for one mailbox (Graph allows 4 per mailbox and app)."""
SELECT = "id,receivedDateTime,internetMessageId"
PREFER = 'IdType="ImmutableId", odata.maxpagesize=' + str(PAGE_SIZE)


class GraphMailbox:
    """One folder of a Microsoft 365 mailbox through Microsoft Graph (a ``Mailbox``)."""

    def __init__(self, account: IncomingAccount, *, timeout: float, tokens: TokenProvider) -> None:
        self._account = account
        self._client = GraphClient(
            account.graph_url,
            account.graph_mailbox or account.username,
            tokens=tokens,
            timeout=timeout,
            verify_tls=account.verify_tls,
            ca_file=account.ca_file,
        )
        self._folders: dict[str, str] | None = None  # path (lower case) → id
        self._counts: dict[str, int] = {}  # folder id → totalItemCount
        self._folder_id: str | None = None
        self._poll_link: str | None = None

    @property
    def where(self) -> str:
        """Host and mailbox, for messages."""
        return f"{self._client.where} (account {self._account.name})"

    async def connect(self) -> MailboxStatus:
        """Resolve the account's folder (each round: it may have been renamed)."""
        self._folders = None
        folder_id = await self._folder(self._account.folder)
        self._folder_id = folder_id
        return MailboxStatus(exists=self._counts.get(folder_id), supports_idle=False)

    async def list_new(self, cursor: str | None) -> Listing:
        """New mail since ``cursor`` (see the module)."""
        folder_id = self._folder_id or await self._folder(self._account.folder)
        link = _link(cursor, folder_id)
        take = True
        if link is None:
            link = self._client.url(f"/mailFolders/{folder_id}/messages/delta")
            params = {"changeType": "created", "$select": SELECT}
            if self._account.start_position == "since" and self._account.start_date:
                params["$filter"] = f"receivedDateTime ge {_day(self._account.start_date)}"
            take = self._account.start_position != "new"
            link = f"{link}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        items: list[dict[str, Any]] = []
        while True:
            page = (await self._client.request("GET", link, headers={"Prefer": PREFER})).json()
            if take:
                items += [i for i in page.get("value", []) if "@removed" not in i]
            if "@odata.deltaLink" in page:
                link = str(page["@odata.deltaLink"])
                self._poll_link = link
                break
            link = str(page["@odata.nextLink"])
            if len(items) >= MAX_LISTED:
                break
        # Graph may report one item twice in a round ("apply the latest"): once is enough.
        unique = {str(i["id"]): i for i in items}
        ordered = sorted(unique.values(), key=lambda i: str(i.get("receivedDateTime") or ""))
        refs = [MessageRef(source_key=str(i["id"]), handle=str(i["id"])) for i in ordered]
        keys = {r.source_key for r in refs}
        after = json.dumps({"folder": folder_id, "link": link})

        def cursor_after(done: set[str]) -> str | None:
            return after if keys <= done else None

        return Listing(refs=refs, twins_possible=False, cursor_after=cursor_after)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        """Each message's MIME, streamed; a message gone meanwhile is skipped."""
        for ref in refs:
            url = self._client.url(f"/messages/{_graph_id(ref)}/$value")
            try:
                async with self._client.stream("GET", url) as response:
                    size = int(response.headers.get("Content-Length") or 0) or None
                    data = bytearray()
                    complete = True
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if max_size is not None and len(data) > max_size:
                            complete = False
                            break
            except Gone:
                log.info("%s: message %s is gone, skipped", self.where, ref.source_key)
                continue
            raw = bytes(data) if complete else _header_block(bytes(data))
            yield FetchedMail(ref=replace(ref, size=size or ref.size), data=raw, complete=complete)

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        """Flag, move or delete the messages (a few requests in flight at once, ``guard``
        before each)."""
        destination = None
        if disposal == "move":
            # The seam adds move_to_folder to IncomingAccount; read it without relying on it.
            name = self._account.move_to_folder
            if not name:
                raise Permanent(f"{self.where}: disposal move needs move_to_folder")
            destination = await self._folder(str(name))
        slots = asyncio.Semaphore(DONE_PARALLEL)

        async def one(ref: MessageRef) -> None:
            url = self._client.url(f"/messages/{_graph_id(ref)}")
            async with slots:
                await guard()
                try:
                    if disposal == "seen":
                        await self._client.request("PATCH", url, json={"isRead": True})
                    elif disposal == "move":
                        body = {"destinationId": destination}
                        await self._client.request("POST", f"{url}/move", json=body)
                    else:
                        await self._client.request("DELETE", url)
                except Gone:
                    log.info("%s: message %s already gone", self.where, ref.source_key)

        # Every request runs to its end; then the first failure is the round's error (a
        # TaskGroup would wrap it in an ExceptionGroup the fetcher does not expect).
        outcomes = await asyncio.gather(*(one(ref) for ref in refs), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def wait_for_news(self, timeout: float) -> bool:
        """Poll the delta link until new mail shows or ``timeout`` passes."""
        end = time.monotonic() + timeout
        # Throttled: the server's wait comes first.
        pause = self._client.not_before - time.monotonic()
        if pause > 0:
            await asyncio.sleep(min(pause, timeout))
        while self._poll_link is not None and time.monotonic() < end:
            page = (
                await self._client.request("GET", self._poll_link, headers={"Prefer": PREFER})
            ).json()
            if any("@removed" not in i for i in page.get("value", [])):
                return True
            # An empty page ends in the next delta link: poll from there.
            self._poll_link = page.get("@odata.deltaLink") or page.get("@odata.nextLink")
            await asyncio.sleep(max(0.0, min(POLL_S, end - time.monotonic())))
        if self._poll_link is None:
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            return True
        return False

    async def close(self) -> None:
        """Close the HTTPS connections."""
        await self._client.close()

    # --- folders -------------------------------------------------------------------------

    async def folders(self) -> list[str]:
        """Every folder of the mailbox as a display-name path (``Inbox/Support``), the inbox
        first: the names ``folder`` and ``move_to_folder`` take (List mailFolders and List
        childFolders, level by level)."""
        paths: list[str] = []
        level = [("", self._client.url("/mailFolders"))]
        while level:
            below: list[tuple[str, str]] = []
            for prefix, listing in level:
                url: str | None = listing + "?$top=100"
                while url:
                    page = (await self._client.request("GET", url)).json()
                    for folder in page.get("value", []):
                        path = prefix + str(folder["displayName"])
                        paths.append(path)
                        if int(folder.get("childFolderCount") or 0) > 0:
                            children = f"/mailFolders/{folder['id']}/childFolders"
                            below.append((path + "/", self._client.url(children)))
                    url = page.get("@odata.nextLink")
            level = below
        return sorted(paths, key=lambda p: (p.lower() != "inbox", p.lower()))

    async def _folder(self, path: str) -> str:
        """The id of the folder named ``path`` (``Parent/Child`` by display names, found in
        the folder list level by level); ``INBOX`` is Graph's well-known ``inbox``, whatever
        the mailbox's language calls it."""
        if path.upper() == "INBOX":
            return "inbox"
        if self._folders is None:
            self._folders = {}
        if (found := self._folders.get(path.lower())) is not None:
            return found
        listing, found = self._client.url("/mailFolders"), None
        seen: list[str] = []
        for part in path.split("/"):
            url: str | None = listing + "?$top=100"
            found, seen = None, []
            while url and found is None:
                page = (await self._client.request("GET", url)).json()
                for folder in page.get("value", []):
                    seen.append(str(folder["displayName"]))
                    if str(folder["displayName"]).lower() == part.lower():
                        found = str(folder["id"])
                        self._counts[found] = int(folder.get("totalItemCount") or 0)
                url = page.get("@odata.nextLink")
            if found is None:
                raise Permanent(
                    f"{self.where}: folder {path!r} does not exist (no {part!r} among "
                    f"{', '.join(seen) or 'no folders'})"
                )
            listing = self._client.url(f"/mailFolders/{found}/childFolders")
        assert found is not None
        self._folders[path.lower()] = found
        return found


def _link(cursor: str | None, folder_id: str) -> str | None:
    if cursor is None:
        return None
    try:
        state = json.loads(cursor)
    except ValueError:
        return None
    if not isinstance(state, dict) or state.get("folder") != folder_id:
        return None
    link = state.get("link")
    return str(link) if link else None


def _graph_id(ref: MessageRef) -> str:
    # The immutable id is both the source key and the handle.
    return str(ref.handle or ref.source_key)


def _day(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _header_block(data: bytes) -> bytes:
    for end in (b"\r\n\r\n", b"\n\n"):
        at = data.find(end)
        if at >= 0:
            return data[: at + len(end)]
    return data
