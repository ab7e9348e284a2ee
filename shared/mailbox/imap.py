"""IMAP (plain or STARTTLS) and IMAPS mailboxes on aioimaplib 2.0.3.

aioimaplib has no STARTTLS: after the server's OK to our STARTTLS command, the transport is
upgraded in place with ``loop.start_tls`` and the client protocol keeps reading from the TLS
transport; capabilities are then asked again (RFC 3501 says to forget the earlier ones).

What the fetcher asks of a mailbox, in IMAP commands. Timeouts, loss of the connection and
the translation of failures into Transient/Permanent (the error tree is drawn there) live
in ``_imap_session``; reading the server's answers in ``_imap_parse``; the FETCH
command in ``_imap_fetch``; the cursor (UIDVALIDITY and the UID mark) in
``shared.models.cursors``, and how far the mark moves in ``_imap_cursor``.

A new UIDVALIDITY means the server renumbered the folder: the listing starts from UID 0, and
the new source keys (``uidvalidity:uid``) cannot collide with the old ones; the listing says
``twins_possible`` from then on, so the same mail under a new key is recognised by the
fetcher as a twin (Message-ID and sha256) instead of being stored again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import aioimaplib

from shared.auth import AuthFailed, CredentialHealth, TokenProvider
from shared.errors import Permanent, Transient
from shared.mailbox._imap_cursor import contiguous_mark
from shared.mailbox._imap_fetch import UidFetch
from shared.mailbox._imap_parse import (
    announces_new_mail,
    encode_folder,
    parse_bodies,
    parse_list,
    parse_search,
    parse_select,
    parse_sizes,
    quote,
    size_groups,
    uid_set,
)
from shared.mailbox._imap_session import Session, race
from shared.mailbox._tls import account_tls_context, wants_starttls
from shared.mailbox.base import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.mailbox.trace import protocol_trace
from shared.models.config import IncomingAccount
from shared.models.cursors import ImapCursor

log = logging.getLogger(__name__)
# aioimaplib logs every byte at DEBUG: whole mails, and LOGIN's password whenever quoting
# changed it (its scrubber looks for the unquoted form). Never let that reach a log.
logging.getLogger("aioimaplib.aioimaplib").setLevel(logging.INFO)

IDLE_RENEW_SECONDS = 600.0
"""One IDLE lasts at most this long: RFC 2177 asks for a new one before 29 minutes, and
NAT gateways and firewalls often drop connections that stay silent for 10-15 minutes."""
FETCH_MAX_BYTES = 16 * 1024 * 1024
"""aioimaplib holds a whole FETCH answer in memory: bound what one command may bring."""
FETCH_MAX_COUNT = 100
CLOSE_TIMEOUT_SECONDS = 5.0
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ImapMailbox:
    """One folder of one IMAP/IMAPS account (implements ``shared.mailbox.Mailbox``).

    ``connect()`` opens a session (TLS first for IMAPS, LOGIN, CAPABILITY, SELECT); called
    again on a session that is still open it only selects the folder again, which refreshes
    UIDVALIDITY and EXISTS, so a fetch loop may call it before every round.
    """

    def __init__(
        self, account: IncomingAccount, *, timeout: float, tokens: TokenProvider | None = None
    ) -> None:
        self._account = account
        self._timeout = timeout
        self._tokens = tokens  # set: AUTHENTICATE XOAUTH2 instead of LOGIN
        self._where = f"{account.host}:{account.effective_port}"
        self._who = f"{account.username}@{account.host}"
        self._session: Session | None = None

    @property
    def credential_health(self) -> CredentialHealth | None:
        """The OAuth 2.0 credential's health; None for Basic auth."""
        return self._tokens.health if self._tokens is not None else None

    @property
    def tokens(self) -> TokenProvider | None:
        """The OAuth 2.0 token source; None for Basic auth."""
        return self._tokens

    async def connect(self) -> MailboxStatus:
        """Open (or reuse) the session and select the folder."""
        session = self._session
        if session is not None and not session.lost.is_set():
            try:
                return await self._select(session)
            except Transient:
                # A server drops idle sessions (autologout, restarts); that is noticed
                # only now and is no failure: open a new session. Anything else is.
                if not session.lost.is_set():
                    raise
                log.debug("IMAP session with %s was gone; reconnecting", self._where)
        await self.close()
        self._session = await self._open()
        return await self._select(self._session)

    async def folders(self) -> list[str]:
        """The account's selectable folders (IMAP LIST), INBOX first; opens a session
        without selecting a folder when none is open (the configured one may not exist)."""
        if self._session is None or self._session.lost.is_set():
            await self.close()
            self._session = await self._open()
        session = self._session
        response = await session.call(
            session.client.protocol.simple_command("LIST", '""', "*"), "LIST"
        )
        session.check(response, "LIST", refused=f"cannot list the folders of {self._who}")
        return sorted(set(parse_list(response.lines)), key=lambda f: (f.upper() != "INBOX", f))

    async def list_new(self, cursor: str | None) -> Listing:
        """Messages above the cursor's UID mark, oldest first; a new account starts at its
        start position, a renumbered folder (new UIDVALIDITY) from UID 0."""
        session = self._require()
        stored = ImapCursor.parse(cursor)
        uidvalidity = session.uidvalidity
        if stored is None:
            start = await self._start_mark()
            now = ImapCursor(uidvalidity=uidvalidity, mark=start)
        elif stored.uidvalidity != uidvalidity:
            log.warning(
                "UIDVALIDITY of %s changed: the server renumbered the folder, fetching it anew",
                self._account.name,
                extra={
                    "account": self._account.name,
                    "old": stored.uidvalidity,
                    "new": uidvalidity,
                },
            )
            now = ImapCursor(uidvalidity=uidvalidity, mark=0, renumbered=True)
        else:
            now = stored
        search = session.client.protocol.search
        response = await session.call(
            search("UID", f"{now.mark + 1}:*", by_uid=True, charset=None), "UID SEARCH"
        )
        session.check(response, "UID SEARCH")
        refs = [
            MessageRef(source_key=f"{uidvalidity}:{uid}", handle=uid)
            for uid in parse_search(response.lines, after_uid=now.mark)
        ]

        def cursor_after(done: set[str]) -> str | None:
            # A listed mail not done stops the mark below it: it is listed again.
            mark = contiguous_mark(refs, done)
            after = now if mark is None else now.moved_to(mark)
            # A new numbering or start is remembered even with nothing taken, so that an
            # empty folder does not look renumbered (or new) again next round.
            return None if after == stored else after.dump()

        return Listing(refs=refs, twins_possible=now.renumbered, cursor_after=cursor_after)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        """Each message's bytes, exactly as stored on the server, without setting \\Seen;
        of a message above ``max_size``, only its header block.

        Messages deleted on the server meanwhile are skipped. One FETCH brings at most
        FETCH_MAX_COUNT messages and FETCH_MAX_BYTES (or one larger message).
        """
        session = self._require()
        by_uid = {uid: ref for ref in refs if (uid := _uid(ref)) is not None}
        if not by_uid:
            return
        protocol = session.client.protocol
        command = UidFetch(
            protocol.new_tag(),
            uid_set(by_uid),
            "(UID RFC822.SIZE)",
            loop=protocol.loop,
            timeout=self._timeout,
        )
        response = await session.call(protocol.execute(command), "UID FETCH")
        session.check(response, "UID FETCH")
        sizes = parse_sizes(response.lines)
        ordered = [(uid, sizes[uid]) for uid in sorted(by_uid) if uid in sizes]
        too_big = {uid for uid, size in ordered if max_size is not None and size > max_size}
        # Header blocks are small: they count as nothing towards a group's bytes.
        weighed = [(uid, 0 if uid in too_big else size) for uid, size in ordered]
        for group in size_groups(weighed, max_bytes=FETCH_MAX_BYTES, max_count=FETCH_MAX_COUNT):
            bodies = await self._bodies(session, [u for u in group if u not in too_big], "[]")
            bodies |= await self._bodies(session, [u for u in group if u in too_big], "[HEADER]")
            for uid in group:
                if uid in bodies:
                    ref = replace(by_uid[uid], size=sizes[uid])
                    yield FetchedMail(ref=ref, data=bodies[uid], complete=uid not in too_big)

    async def _bodies(self, session: Session, uids: list[int], section: str) -> dict[int, bytes]:
        """UID → bytes of BODY.PEEK``section`` for ``uids`` (one FETCH)."""
        if not uids:
            return {}
        protocol = session.client.protocol
        command = UidFetch(
            protocol.new_tag(),
            uid_set(uids),
            f"(UID BODY.PEEK{section})",
            loop=protocol.loop,
            timeout=self._timeout,
        )
        response = await session.call(
            protocol.execute(command),
            "UID FETCH",
            bounded=False,  # its own timeout restarts with every chunk received
        )
        session.check(response, "UID FETCH")
        with session.translated("UID FETCH"):
            return parse_bodies(response.lines)

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        """Flag the messages \\Seen; with ``move`` then move them to the account's
        ``move_to_folder``, with ``delete`` expunge exactly them instead (``guard`` before
        each of these commands)."""
        if disposal == "delete":
            await self._delete(refs, guard)
            return
        await self._store(refs, r"(\Seen)", guard)
        if disposal == "move":
            await self._move(refs, guard)

    async def _start_mark(self) -> int:
        """Where a new account starts: UID 0 (start position ``all``), the highest UID now
        (``new``), or the UID just below the first mail received on or after ``start_date``."""
        account = self._account
        if account.start_position == "all":
            return 0
        session = self._require()
        search = session.client.protocol.search
        everything = await session.call(search("ALL", by_uid=True, charset=None), "UID SEARCH")
        session.check(everything, "UID SEARCH")
        highest = max(parse_search(everything.lines, after_uid=0), default=0)
        start = highest
        since = account.start_date
        if since is not None:
            day = f"{since.day}-{_MONTHS[since.month - 1]}-{since.year}"
            recent = await session.call(
                search("SINCE", day, by_uid=True, charset=None), "UID SEARCH"
            )
            session.check(recent, "UID SEARCH")
            first = min(parse_search(recent.lines, after_uid=0), default=None)
            start = highest if first is None else first - 1
        log.info(
            "%s starts at UID %d (start position %s)",
            account.name,
            start,
            account.start_position,
            extra={"account": account.name, "start_uid": start},
        )
        return start

    async def _delete(self, refs: Sequence[MessageRef], guard: Guard) -> None:
        """Flag exactly these messages \\Deleted and expunge exactly them (UID EXPUNGE).

        Without UIDPLUS the only way to remove them would be EXPUNGE, which also removes
        every other message flagged \\Deleted in the folder, by anyone: refused.
        """
        session = self._require()
        uids = [uid for ref in refs if (uid := _uid(ref)) is not None]
        if not uids:
            return
        if "UIDPLUS" not in session.capabilities:
            raise Permanent(
                f"IMAP server {self._where} does not offer UIDPLUS, so Mailroom cannot expunge "
                f"only the mail it fetched from {self._account.folder!r} of {self._who}; "
                "an EXPUNGE of the whole folder could remove mail Mailroom never stored. "
                "Set after_fetch to 'seen' or 'move' for this account."
            )
        await self._store(refs, r"(\Deleted)", guard)
        expunge = session.client.protocol.expunge
        await guard()
        response = await session.call(expunge(uid_set(uids), by_uid=True), "UID EXPUNGE")
        session.check(response, "UID EXPUNGE")

    async def _move(self, refs: Sequence[MessageRef], guard: Guard) -> None:
        """UID MOVE (RFC 6851) to ``move_to_folder``; without MOVE, UID COPY and then
        expunge exactly the originals (a crash in between leaves a copy, never a loss)."""
        session = self._require()
        uids = [uid for ref in refs if (uid := _uid(ref)) is not None]
        target = self._account.move_to_folder
        if not uids or target is None:
            return
        protocol = session.client.protocol
        refused = f"cannot move mail of {self._who} to folder {target!r}"
        await guard()
        if "MOVE" in session.capabilities:
            response = await session.call(
                protocol.move(uid_set(uids), encode_folder(target), by_uid=True), "UID MOVE"
            )
            session.check(response, "UID MOVE", refused=refused, permanent=True)
            return
        response = await session.call(
            protocol.copy(uid_set(uids), encode_folder(target), by_uid=True), "UID COPY"
        )
        session.check(response, "UID COPY", refused=refused, permanent=True)
        await self._delete(refs, guard)

    async def wait_for_news(self, timeout: float) -> bool:
        """IDLE until the folder grows or ``timeout`` (at most IDLE_RENEW_SECONDS) passes;
        without IDLE, sleep ``timeout`` and return True."""
        session = self._require()
        if "IDLE" not in session.capabilities:
            await asyncio.sleep(timeout)
            return True
        client = session.client
        window = min(timeout, IDLE_RENEW_SECONDS)
        queue = client.protocol.idle_queue
        while not queue.empty():  # pushes left over from an earlier IDLE
            queue.get_nowait()
        idle = await session.call(client.idle_start(timeout=window), "IDLE")
        try:
            news = await self._idle(session, window)
        except BaseException:
            # IDLE is still running: the session cannot take commands any more.
            session.lost.set()
            raise
        client.idle_done()
        await session.call(idle, "IDLE")
        return news

    async def close(self) -> None:
        """LOGOUT (briefly) and drop the connection; never raises."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if not session.lost.is_set():
                await asyncio.wait_for(
                    session.client.protocol.logout(), min(self._timeout, CLOSE_TIMEOUT_SECONDS)
                )
        except Exception as exc:
            log.debug("IMAP logout from %s failed: %s", self._where, type(exc).__name__)
        finally:
            session.drop()

    async def _open(self) -> Session:
        account = self._account
        context = account_tls_context(account, where=self._where) if account.uses_tls else None
        lost = asyncio.Event()
        client = aioimaplib.IMAP4(
            host=account.host,
            port=account.effective_port,
            timeout=self._timeout,
            conn_lost_cb=lambda _exc: lost.set(),
            ssl_context=context,
        )
        password = account.password.get_secret_value() if account.password else ""
        session = Session(
            client=client,
            where=self._where,
            timeout=self._timeout,
            secret=password,
            lost=lost,
            trace=protocol_trace(account),
        )
        try:
            await session.call(client.wait_hello_from_server(), "connect")
            await self._secure(session)
            await self._login(session, password)
        except BaseException:
            session.drop()
            raise
        return session

    async def _secure(self, session: Session) -> None:
        """STARTTLS when the account's security asks for it (see ``_tls``)."""
        protocol = session.client.protocol
        offered = "STARTTLS" in {str(c).upper() for c in protocol.capabilities}
        if not wants_starttls(self._account, offered=offered, where=self._where):
            return
        context = account_tls_context(self._account, where=self._where)
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await session.call(protocol.execute(command), "STARTTLS")
        session.check(response, "STARTTLS", permanent=True)
        loop = asyncio.get_running_loop()
        transport = await session.call(
            loop.start_tls(
                protocol.transport, protocol, context, server_hostname=self._account.host
            ),
            "STARTTLS",
        )
        if transport is None:
            raise Transient(f"IMAP server {self._where} closed the connection during STARTTLS")
        protocol.transport = transport
        await session.call(protocol.capability(), "CAPABILITY")

    async def _login(self, session: Session, password: str) -> None:
        protocol = session.client.protocol
        if "LOGINDISABLED" in protocol.capabilities:
            raise Permanent(
                f"login refused for {self._who}: IMAP server {self._where} does not accept a "
                "password over an unencrypted connection; use IMAPS"
            )
        refused = f"login refused for {self._who}"
        if self._tokens is not None:
            token = await self._tokens.token()
            session.secret = token
            _answer_sasl_challenges(protocol)
            what = "AUTHENTICATE XOAUTH2"
            response = await session.call(protocol.xoauth2(self._account.username, token), what)
            if response.result != "OK":
                self._tokens.invalidate()  # revoked or expired early: ask for a new one
            session.check(response, what, refused=refused, permanent=AuthFailed)
        else:
            user = quote(self._account.username)
            response = await session.call(protocol.login(user, password), "LOGIN")
            session.check(response, "LOGIN", refused=refused, permanent=AuthFailed)
        # Servers announce more after login (Dovecot: UIDPLUS), and aioimaplib's parsing of
        # the capabilities inside the LOGIN answer is unreliable: ask again.
        await session.call(protocol.capability(), "CAPABILITY")
        session.capabilities = frozenset(str(c).upper() for c in protocol.capabilities)

    async def _select(self, session: Session) -> MailboxStatus:
        folder = self._account.folder
        select = session.client.protocol.select
        response = await session.call(select(encode_folder(folder)), "SELECT")
        refused = f"cannot select folder {folder!r} of {self._who}"
        session.check(response, "SELECT", refused=refused, permanent=True)
        uidvalidity, exists = parse_select(response.lines)
        if uidvalidity is None:
            raise Permanent(
                f"IMAP server {self._where} sent no UIDVALIDITY for {folder!r}: "
                "without it, mail cannot be tracked by UID"
            )
        session.uidvalidity = uidvalidity
        return MailboxStatus(
            exists=exists, supports_idle="IDLE" in session.capabilities, uidvalidity=uidvalidity
        )

    def _require(self) -> Session:
        if self._session is None:
            raise Transient(f"IMAP session with {self._where} is not open: connect() first")
        return self._session

    async def _store(self, refs: Sequence[MessageRef], flags: str, guard: Guard) -> None:
        session = self._require()
        uids = [uid for ref in refs if (uid := _uid(ref)) is not None]
        if not uids:
            return
        store = session.client.protocol.store
        await guard()
        response = await session.call(
            store(uid_set(uids), "+FLAGS.SILENT", flags, by_uid=True), "UID STORE"
        )
        session.check(response, "UID STORE")

    async def _idle(self, session: Session, window: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        queue = session.client.protocol.idle_queue
        while (remaining := deadline - loop.time()) > 0:
            with session.translated("IDLE"):
                try:
                    pushed = await race(queue.get(), session.lost, remaining)
                except TimeoutError:
                    return False
            if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return False
            if announces_new_mail(pushed):
                return True
        return False


def _uid(ref: MessageRef) -> int | None:
    """The UID this adapter put in ``ref.handle``."""
    return ref.handle if isinstance(ref.handle, int) else None


def _answer_sasl_challenges(protocol: Any) -> None:
    """Make aioimaplib answer a SASL challenge during AUTHENTICATE with an empty line.

    A server refusing an XOAUTH2 token sends a ``+`` challenge (a JSON error) and waits for
    the client's answer before its NO; aioimaplib only records the challenge, so the
    command would wait until the timeout and a refusal would look like a hanging server.
    """
    original = protocol._continuation

    def continuation(line: bytes) -> None:
        command = protocol.pending_sync_command
        if command is not None and command.name == "AUTHENTICATE":
            protocol.send("")
            return
        original(line)

    protocol._continuation = continuation
