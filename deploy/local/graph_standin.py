"""A local stand-in for Microsoft Graph v1.0 mail, for tests only (no Graph service is
reachable here).

It serves over HTTPS (a ``trustme`` CA, as ``deploy.local.oauth_issuer`` does) exactly the
endpoints Mailroom uses, with the JSON shapes Microsoft documents on these Microsoft Learn
pages:

- "List mailFolders" and "List childFolders" (``/graph/api/user-list-mailfolders``,
  ``/graph/api/mailfolder-list-childfolders``):
  ``GET /users/{id|upn}/mailFolders`` and ``.../mailFolders/{id}/childFolders``, answered
  ``{"value": [mailFolder, ...]}`` with ``id``, ``displayName``, ``parentFolderId``,
  ``childFolderCount``, ``unreadItemCount``, ``totalItemCount``, ``isHidden``; the
  well-known names (``inbox``, ``archive``, ``deleteditems``, ``sentitems``, ``drafts``)
  are accepted in place of an id.
- "message: delta" and "Get incremental changes to messages in a folder"
  (``/graph/api/message-delta``, ``/graph/delta-query-messages``):
  ``GET /users/{u}/mailFolders/{id}/messages/delta`` with ``$select``, ``$filter`` (only
  ``receivedDateTime ge|gt {value}``), the custom option ``changeType``
  (created|updated|deleted) and ``Prefer: odata.maxpagesize=n``; pages end in
  ``@odata.nextLink`` (``$skiptoken``) and the last one in ``@odata.deltaLink``
  (``$deltatoken``), which encode every option given in the first request; a message gone
  from the folder since the token comes back as ``{"id": ..., "@removed": {"reason":
  "deleted"}}``.
- "Get MIME content of a message" (``/graph/outlook-get-mime-message``):
  ``GET /users/{u}/messages/{id}/$value``, the raw RFC 5322 bytes.
- "Update message" (``PATCH /users/{u}/messages/{id}``, here ``{"isRead": true}``),
  "message: move" (``POST .../messages/{id}/move`` with ``destinationId``, 201 and the moved
  message), "Delete message" (``DELETE .../messages/{id}``, 204; the message goes to
  Deleted Items as in Exchange).
- "user: sendMail" and "Send Outlook messages in MIME format"
  (``/graph/api/user-sendmail``, ``/graph/outlook-send-mime-message``):
  ``POST /users/{u}/sendMail`` with ``Content-Type: text/plain`` and the base64 MIME
  message as body, 202 with no body; a copy goes to Sent Items, and mail to a mailbox of this
  stand-in is delivered to its inbox.
- "Microsoft Graph throttling guidance" (``/graph/throttling``): 429 with ``Retry-After``
  (seconds) and an error body; "Microsoft Graph error responses and resource types"
  (``/graph/errors``): ``{"error": {"code", "message", "innerError": {"request-id",
  "date"}}}``, and a ``request-id`` header on every answer.

Tokens are checked with the local OAuth issuer's introspection (``introspect``, the same
check Dovecot makes): the token's user may use its own mailbox and the mailboxes
:meth:`GraphStandin.allow` grants it (Exchange's application access policy, or
delegated access to a shared mailbox). Messages are real MIME files on disk
(``<root>/<mailbox>/<id>.eml``); their state (folder, isRead, received time, change
numbers) is kept in memory.

The control API is this module's Python objects: :meth:`GraphStandin.deliver`,
:meth:`remaining`, :meth:`throttle`, :meth:`fail`, :meth:`sent`, :meth:`drop_after_send`
(a connection lost after a sendMail was taken), and :attr:`requests`, the
record of every request (method, path, mailbox, status) for asserting that Mailroom uses the
documented paths only (:data:`DOCUMENTED_PATHS`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

WELL_KNOWN = {
    "inbox": "Inbox",
    "archive": "Archive",
    "deleteditems": "Deleted Items",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
}
"""Well-known folder names (usable in place of an id) and their display names."""
DEFAULT_PAGE_SIZE = 10
"""Graph's page size for message delta without ``Prefer: odata.maxpagesize``."""
CHUNK = 64 * 1024
DROP = object()
"""An answer of :meth:`GraphStandin.handle`: none, the connection is closed."""

_U = r"/v1\.0/users/[^/]+"
DOCUMENTED_PATHS = tuple(
    re.compile(p)
    for p in (
        rf"GET {_U}/mailFolders",
        rf"GET {_U}/mailFolders/[^/]+/childFolders",
        rf"GET {_U}/mailFolders/[^/]+/messages/delta",
        rf"GET {_U}/messages/[^/]+/\$value",
        rf"PATCH {_U}/messages/[^/]+",
        rf"POST {_U}/messages/[^/]+/move",
        rf"DELETE {_U}/messages/[^/]+",
        rf"POST {_U}/sendMail",
    )
)
"""``METHOD path`` of every endpoint served (and so of every request Mailroom may make)."""


def documented(method: str, path: str) -> bool:
    """Whether ``method path`` is one of :data:`DOCUMENTED_PATHS`."""
    return any(p.fullmatch(f"{method} {path}") for p in DOCUMENTED_PATHS)


@dataclass
class Recorded:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, str]
    mailbox: str | None
    status: int = 0


@dataclass
class _Message:
    id: str
    folder: str
    file: Path
    received: datetime
    internet_message_id: str | None
    is_read: bool = False
    created: int = 0
    """Change number at which it came into its folder."""
    updated: int = 0


@dataclass
class _Folder:
    id: str
    name: str
    parent: str | None
    removed: list[tuple[int, str, int]] = field(default_factory=list)
    """(change number, message id, change number it had come in at) of messages gone."""


@dataclass
class _Mailbox:
    upn: str
    object_id: str
    root: Path
    folders: dict[str, _Folder] = field(default_factory=dict)
    """By id."""
    well_known: dict[str, str] = field(default_factory=dict)
    """Well-known name → folder id."""
    messages: dict[str, _Message] = field(default_factory=dict)
    sent: list[bytes] = field(default_factory=list)
    throttled: list[float] = field(default_factory=list)
    failing: list[int] = field(default_factory=list)
    dropping: int = 0
    """sendMail requests still to take and then drop without an answer."""


@dataclass
class _Snapshot:
    items: list[dict[str, Any]]
    token: str


class GraphError(Exception):
    """An error answer: status, Graph error code and message, extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass
class GraphStandin:
    """The running stand-in and its control API."""

    port: int
    root: Path
    ca_file: Path
    introspect: Callable[[str], dict[str, Any]] = field(repr=False)
    requests: list[Recorded] = field(default_factory=list)
    mailboxes: dict[str, _Mailbox] = field(default_factory=dict, repr=False)
    grants: dict[str, set[str]] = field(default_factory=dict)
    change: int = 0
    _snapshots: dict[str, _Snapshot] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The Graph v1.0 base URL (an account's ``graph_url``)."""
        return f"https://127.0.0.1:{self.port}/v1.0"

    # --- control API ---------------------------------------------------------------------

    def add_mailbox(self, upn: str) -> str:
        """Create (or empty) ``upn``'s mailbox with the well-known folders; its object id."""
        with self._lock:
            old = self.mailboxes.pop(upn.lower(), None)
            root = self.root / re.sub(r"[^A-Za-z0-9@._-]", "_", upn.lower())
            root.mkdir(parents=True, exist_ok=True)
            for file in root.glob("*.eml"):
                file.unlink()
            box = _Mailbox(upn, old.object_id if old else str(uuid.uuid4()), root)
            for well_known, name in WELL_KNOWN.items():
                folder = _Folder(_new_id(), name, None)
                box.folders[folder.id] = folder
                box.well_known[well_known] = folder.id
            self.mailboxes[upn.lower()] = box
            return box.object_id

    def add_folder(self, upn: str, name: str, parent: str | None = None) -> str:
        """A folder ``name`` below ``parent`` (a folder id or well-known name); its id."""
        with self._lock:
            box = self._box(upn)
            parent_id = self._folder(box, parent).id if parent else None
            folder = _Folder(_new_id(), name, parent_id)
            box.folders[folder.id] = folder
            return folder.id

    def allow(self, user: str, upn: str) -> None:
        """Let tokens of ``user`` use ``upn``'s mailbox (an application access policy)."""
        with self._lock:
            self.grants.setdefault(user.lower(), set()).add(upn.lower())

    def deliver(
        self,
        upn: str,
        raw: bytes,
        *,
        folder: str = "inbox",
        received: datetime | None = None,
        is_read: bool = False,
    ) -> str:
        """Put one mail into a folder of ``upn``'s mailbox; its id."""
        with self._lock:
            box = self._box(upn)
            return self._store(box, self._folder(box, folder), raw, received, is_read).id

    def remaining(self, upn: str, folder: str = "inbox") -> list[tuple[str | None, bool]]:
        """(Message-ID, isRead) of each mail left in a folder, oldest first."""
        with self._lock:
            box = self._box(upn)
            folder_id = self._folder(box, folder).id
            return [
                (m.internet_message_id, m.is_read)
                for m in sorted(box.messages.values(), key=lambda m: m.received)
                if m.folder == folder_id
            ]

    def throttle(self, upn: str, times: int = 1, *, retry_after: float = 1.0) -> None:
        """Answer the next ``times`` requests for ``upn``'s mailbox 429 with Retry-After."""
        with self._lock:
            self._box(upn).throttled.extend([retry_after] * times)

    def fail(self, upn: str, times: int = 1, *, status: int = 503) -> None:
        """Answer the next ``times`` requests for ``upn``'s mailbox with ``status``."""
        with self._lock:
            self._box(upn).failing.extend([status] * times)

    def drop_after_send(self, upn: str, times: int = 1) -> None:
        """Take the next ``times`` sendMail requests of ``upn`` (the mail is sent) and close
        the connection without an answer, as a connection lost before Graph's 202."""
        with self._lock:
            self._box(upn).dropping += times

    def sent(self, upn: str) -> list[bytes]:
        """The MIME messages ``upn`` sent through sendMail, decoded, oldest first."""
        with self._lock:
            return list(self._box(upn).sent)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- state ---------------------------------------------------------------------------

    def _box(self, key: str) -> _Mailbox:
        box = self.mailboxes.get(key.lower())
        if box is None:
            box = next((b for b in self.mailboxes.values() if b.object_id == key), None)
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
        return box

    def _folder(self, box: _Mailbox, key: str | None) -> _Folder:
        key = key or ""
        folder = box.folders.get(box.well_known.get(key.lower(), key))
        if folder is None:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return folder

    def _message(self, box: _Mailbox, message_id: str) -> _Message:
        message = box.messages.get(message_id)
        if message is None:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return message

    def _tick(self) -> int:
        self.change += 1
        return self.change

    def _store(
        self,
        box: _Mailbox,
        folder: _Folder,
        raw: bytes,
        received: datetime | None,
        is_read: bool,
    ) -> _Message:
        message_id = _new_id()
        file = box.root / f"{message_id}.eml"
        file.write_bytes(raw)
        headers = message_from_bytes(raw.split(b"\r\n\r\n", 1)[0], policy=policy.compat32)
        when = received or datetime.now(UTC)
        tick = self._tick()
        message = _Message(
            message_id, folder.id, file, when, headers.get("Message-ID"), is_read, tick, tick
        )
        box.messages[message_id] = message
        return message

    def _leave(self, box: _Mailbox, message: _Message, to: _Folder | None) -> None:
        """Move ``message`` to ``to`` (None: delete it for good)."""
        box.folders[message.folder].removed.append((self._tick(), message.id, message.created))
        if to is None:
            del box.messages[message.id]
            message.file.unlink(missing_ok=True)
            return
        message.folder, message.created = to.id, self.change
        message.updated = self.change

    def _allowed(self, token: str, box: _Mailbox) -> None:
        answer = self.introspect(token) if token else {"active": False}
        if not answer.get("active"):
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        user = str(answer.get("username", "")).lower()
        if user != box.upn.lower() and box.upn.lower() not in self.grants.get(user, set()):
            raise GraphError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )

    # --- endpoints -----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """One request: status, headers and a JSON body (a dict), a Path to stream, None, or
        :data:`DROP` (no answer: the connection is closed)."""
        match = re.fullmatch(r"/v1\.0/users/([^/]+)(/.*)", path)
        record = Recorded(method, path, query, match.group(1) if match else None)
        with self._lock:
            self.requests.append(record)
        try:
            if match is None:
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.")
            with self._lock:
                box = self._box(match.group(1))
                self._allowed(headers.get("authorization", "").removeprefix("Bearer "), box)
                if box.throttled:
                    wait = box.throttled.pop(0)
                    raise GraphError(
                        429,
                        "ApplicationThrottled",
                        "Application is over its MailboxConcurrency limit.",
                        {"Retry-After": f"{wait:g}"},
                    )
                if box.failing:
                    status = box.failing.pop(0)
                    raise GraphError(status, "ServiceUnavailable", "Service unavailable.")
                status, extra, answer = self._route(
                    box, method, match.group(2), query, headers, body
                )
        except Exception as exc:  # a stand-in bug: answer like Graph's 500, with its name
            if not isinstance(exc, GraphError):
                exc = GraphError(500, "generalException", f"stand-in failed: {exc!r}")
            status, extra = exc.status, exc.headers
            answer = {
                "error": {
                    "code": exc.code,
                    "message": exc.message,
                    "innerError": {"date": _iso(datetime.now(UTC))},
                }
            }
        record.status = status
        return status, extra, answer

    def _route(
        self,
        box: _Mailbox,
        method: str,
        rest: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], Any]:
        if method == "GET" and rest == "/mailFolders":
            top = [f for f in box.folders.values() if f.parent is None]
            return 200, {}, {"value": [self._folder_json(box, f) for f in top]}
        if method == "GET" and (m := re.fullmatch(r"/mailFolders/([^/]+)/childFolders", rest)):
            parent = self._folder(box, m.group(1))
            children = [f for f in box.folders.values() if f.parent == parent.id]
            return 200, {}, {"value": [self._folder_json(box, f) for f in children]}
        if method == "GET" and (m := re.fullmatch(r"/mailFolders/([^/]+)/messages/delta", rest)):
            return 200, {}, self._delta(box, self._folder(box, m.group(1)), query, headers)
        if method == "POST" and rest == "/sendMail":
            return self._send(box, headers, body)
        m = re.fullmatch(r"/messages/([^/]+)(/\$value|/move)?", rest)
        if m is None:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest}'.")
        message = self._message(box, m.group(1))
        if method == "GET" and m.group(2) == "/$value":
            return 200, {"Content-Type": "text/plain"}, message.file
        if method == "PATCH" and m.group(2) is None:
            changes = _json_body(body)
            if set(changes) - {"isRead"}:
                raise GraphError(400, "ErrorInvalidPropertyRequest", "Only isRead is served here.")
            message.is_read = bool(changes.get("isRead", message.is_read))
            message.updated = self._tick()
            return 200, {}, self._message_json(message, None)
        if method == "POST" and m.group(2) == "/move":
            destination = str(_json_body(body).get("destinationId", ""))
            target = self._folder(box, destination)
            self._leave(box, message, target)
            return 201, {}, self._message_json(message, None)
        if method == "DELETE" and m.group(2) is None:
            deleted = self._folder(box, "deleteditems")
            self._leave(box, message, None if message.folder == deleted.id else deleted)
            return 204, {}, None
        raise GraphError(405, "BadRequest", f"{method} is not allowed here.")

    def _folder_json(self, box: _Mailbox, folder: _Folder) -> dict[str, Any]:
        inside = [m for m in box.messages.values() if m.folder == folder.id]
        return {
            "id": folder.id,
            "displayName": folder.name,
            "parentFolderId": folder.parent,
            "childFolderCount": sum(f.parent == folder.id for f in box.folders.values()),
            "unreadItemCount": sum(not m.is_read for m in inside),
            "totalItemCount": len(inside),
            "isHidden": False,
        }

    def _message_json(self, message: _Message, select: list[str] | None) -> dict[str, Any]:
        full = {
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"{message.updated}"',
            "id": message.id,
            "receivedDateTime": _iso(message.received),
            "internetMessageId": message.internet_message_id,
            "isRead": message.is_read,
            "parentFolderId": message.folder,
        }
        if select is None:
            return full
        return {k: v for k, v in full.items() if k.startswith("@") or k == "id" or k in select}

    def _delta(
        self, box: _Mailbox, folder: _Folder, query: dict[str, str], headers: dict[str, str]
    ) -> dict[str, Any]:
        page_size = DEFAULT_PAGE_SIZE
        if m := re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", "")):
            page_size = max(1, int(m.group(1)))
        base = f"{self.url}/users/{quote(box.upn, safe='@')}/mailFolders/{folder.id}/messages/delta"
        if "$skiptoken" in query:
            snapshot = self._snapshots.pop(query["$skiptoken"], None)
            if snapshot is None:
                raise GraphError(410, "SyncStateNotFound", "The sync state was not found.")
        else:
            snapshot = self._changes(box, folder, query)
        page, rest = snapshot.items[:page_size], snapshot.items[page_size:]
        answer: dict[str, Any] = {"@odata.context": f"{self.url}/$metadata#Collection(message)"}
        answer["value"] = page
        if rest:
            skip = secrets.token_urlsafe(12)
            self._snapshots[skip] = _Snapshot(rest, snapshot.token)
            answer["@odata.nextLink"] = f"{base}?{urlencode({'$skiptoken': skip}, safe='$')}"
        else:
            answer["@odata.deltaLink"] = (
                f"{base}?{urlencode({'$deltatoken': snapshot.token}, safe='$')}"
            )
        return answer

    def _changes(self, box: _Mailbox, folder: _Folder, query: dict[str, str]) -> _Snapshot:
        """What a delta round reports: everything (first round) or the changes since the
        token; the options ride in the token as Graph encodes them into its links."""
        options = {k: v for k, v in query.items() if k in ("$select", "$filter", "changeType")}
        since: int | None = None
        if "$deltatoken" in query:
            try:
                state = json.loads(base64.urlsafe_b64decode(query["$deltatoken"]))
            except (binascii.Error, ValueError):
                raise GraphError(400, "BadRequest", "The delta token is not valid.") from None
            since, options = int(state["change"]), dict(state["options"])
        change_type = options.get("changeType")
        if change_type not in (None, "created", "updated", "deleted"):
            raise GraphError(400, "BadRequest", f"Unsupported changeType '{change_type}'.")
        after = _received_filter(options.get("$filter"))
        select = options["$select"].split(",") if "$select" in options else None
        items: list[dict[str, Any]] = []
        inside = sorted(
            (m for m in box.messages.values() if m.folder == folder.id), key=lambda m: m.received
        )
        for message in inside:
            if after is not None and not after(message.received):
                continue
            kind = (
                "created"
                if since is None or message.created > since
                else "updated"
                if message.updated > since
                else None
            )
            if kind is not None and change_type in (None, kind):
                items.append(self._message_json(message, select))
        if since is not None and change_type in (None, "deleted"):
            for number, message_id, came in folder.removed:
                if number > since and came <= since:
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.message",
                            "id": message_id,
                            "@removed": {"reason": "deleted"},
                        }
                    )
        state = {"change": self.change, "options": options}
        token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        return _Snapshot(items, token)

    def _send(
        self, box: _Mailbox, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if not headers.get("content-type", "").startswith("text/plain"):
            raise GraphError(400, "ErrorInvalidRequest", "This sample serves MIME (text/plain).")
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise GraphError(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            ) from None
        parsed = message_from_bytes(raw, policy=policy.compat32)
        recipients = [
            addr
            for _, addr in getaddresses(
                parsed.get_all("To", []) + parsed.get_all("Cc", []) + parsed.get_all("Bcc", [])
            )
        ]
        if not recipients:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is required.")
        bad = [r for r in recipients if "@" not in r or r.lower().endswith(".invalid")]
        if bad:
            raise GraphError(
                400,
                "ErrorInvalidRecipients",
                f"At least one recipient is not valid., Recipient '{bad[0]}' is not resolved.",
            )
        box.sent.append(raw)
        # Exchange strips Bcc from what it stores and delivers.
        kept = re.sub(rb"(?im)^Bcc:.*(\r?\n[ \t].*)*\r?\n", b"", raw)
        self._store(box, self._folder(box, "sentitems"), kept, None, True)
        for address in recipients:
            local = self.mailboxes.get(address.lower())
            if local is not None:
                self._store(local, self._folder(local, "inbox"), kept, None, False)
        if box.dropping:
            box.dropping -= 1
            return 202, {}, DROP
        return 202, {}, None


def _new_id() -> str:
    # Graph ids are long base64 strings; these are URL-safe the same way.
    return "AAMk" + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _received_filter(text: str | None) -> Callable[[datetime], bool] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*receivedDateTime\s+(ge|gt)\s+(\S+)\s*", text)
    if m is None:
        raise GraphError(
            400, "ErrorInvalidUrlQueryFilter", "The only $filter served is receivedDateTime ge|gt."
        )
    limit = datetime.fromisoformat(m.group(2).replace("Z", "+00:00"))
    return (lambda t: t >= limit) if m.group(1) == "ge" else (lambda t: t > limit)


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise GraphError(400, "BadRequest", "The request body is not JSON.") from None
    if not isinstance(value, dict):
        raise GraphError(400, "BadRequest", "The request body is not a JSON object.")
    return value


def _handler(standin: GraphStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Graph's front doors do
        # Headers and body go out in separate writes: without TCP_NODELAY the client's
        # delayed ACK holds each answer ~40 ms.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, answer = standin.handle(self.command, path, query, headers, body)
            if answer is DROP:
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("request-id", str(uuid.uuid4()))
            for name, value in extra.items():
                self.send_header(name, value)
            if isinstance(answer, Path):
                size = answer.stat().st_size
                self.send_header("Content-Length", str(size))
                self.end_headers()
                with answer.open("rb") as file:
                    while chunk := file.read(CHUNK):
                        self.wfile.write(chunk)
                return
            data = b"" if answer is None else json.dumps(answer).encode()
            if answer is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the record of requests is :attr:`GraphStandin.requests`."""

    return Handler


def start_graph_standin(
    state_dir: Path, introspect: Callable[[str], dict[str, Any]]
) -> GraphStandin:
    """Serve the stand-in on a free loopback port with a fresh CA (in ``state_dir``);
    ``introspect`` checks a bearer token (the local issuer's :meth:`introspect`)."""
    import trustme  # test extra only, as in oauth_issuer

    ca = trustme.CA()
    # A directory of its own per start: two stand-ins in one session (a test module's and the
    # contract suite's) must not overwrite each other's CA or mail.
    base = Path(tempfile.mkdtemp(prefix="graph-", dir=state_dir))
    ca_file = base / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    standin = GraphStandin(
        port=server.server_port,
        root=base / "mail",
        ca_file=ca_file,
        introspect=introspect,
        _server=server,
    )
    server.RequestHandlerClass = _handler(standin)
    threading.Thread(target=server.serve_forever, daemon=True, name="graph-standin").start()
    return standin
