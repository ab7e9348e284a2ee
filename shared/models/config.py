"""Typed views of the system properties. Each is validated on every write.

Properties are stored as (module, key, value) like ConSol CM's; these models are what the
services use. See ``shared/config_views.py`` for how properties become views.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from shared.conversation import ConversationSettings
from shared.models._validators import HostName, NonEmptyText, optional_regex, render_error
from shared.models.field_hints import hints
from shared.models.messages import HeaderText, MailAddress
from shared.models.outgoing_config import SenderSettings, SystemSettings, TemplateSettings

if TYPE_CHECKING:
    from shared.mailbox.base import Disposal

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SAMPLE_CASE_REFERENCE = "10042"
SAMPLE_SUBJECT = "Printer on floor 3 is broken"

_TEMPLATES = SandboxedEnvironment(autoescape=False)


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> Template:
    # Compiling costs a millisecond and more; the sender renders the same template per mail.
    return _TEMPLATES.from_string(template)


def one_line_template(value: str) -> None:
    """Refuse CR/LF in a subject template, as every other header field refuses them."""
    if "\r" in value or "\n" in value:
        raise ValueError("a subject template must be one line: CR and LF are refused")


def render_subject(template: str, *, case: str, subject: str) -> str:
    """Render the outgoing subject template in Jinja2's sandbox; errors become ValueError."""
    try:
        rendered = _compiled(template).render(case=case, subject=subject)
    except Exception as exc:  # a render-time error is the template's, whatever its type
        raise ValueError(f"outgoing subject template does not render: {render_error(exc)}") from exc
    return " ".join(rendered.split())


def find_case_reference(pattern: str, subject: str) -> str | None:
    """The case reference the incoming subject pattern finds in ``subject``, if any."""
    match = re.search(pattern, subject)
    return match.group("case") if match else None


def _given(secret: SecretStr | None) -> bool:
    return secret is not None and secret.get_secret_value() != ""


def _one_client(credential: str | None, fields: tuple[str, ...], view: BaseModel) -> None:
    """Refuse a named credential beside the view's own OAuth 2.0 client fields."""
    own = [f for f in fields if getattr(view, f) is not None]
    if credential is not None and own:
        raise ValueError(
            f"credential {credential!r} brings the OAuth 2.0 client; leave {', '.join(own)} unset"
        )


def check_jmap_url(url: str) -> None:
    """Refuse a JMAP URL that is not https (http only to a loopback host) or has no host."""
    refused = f"jmap_url must be an https:// URL with a host, not {url!r}"
    try:
        parts = urlsplit(url)
        name = parts.hostname  # without brackets, port and user info
    except ValueError as exc:  # an unbalanced or invalid [IPv6] host
        raise ValueError(refused) from exc
    # The scheme as written: urlsplit lowercases it and drops leading blanks, which the
    # client is not asked to do with the URL.
    if not url.startswith(("https://", "http://")) or not name:
        raise ValueError(refused)
    if "@" in parts.netloc:
        raise ValueError("jmap_url must not carry credentials: use username and password")
    if parts.scheme == "http" and name not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(
            "jmap_url must be https:// (http:// would send the password in clear); "
            "http:// is accepted for 127.0.0.1 and localhost only"
        )


def jmap_session_url(url: str | None, host: str, port: int | None) -> str:
    """The JMAP session URL: ``url`` as given when it has a path (or a query), ``url``
    plus ``/.well-known/jmap`` when it is a bare base URL, else built from host and port."""
    if url is None:
        return f"https://{host}{f':{port}' if port else ''}{JMAP_WELL_KNOWN}"
    parts = urlsplit(url)
    if parts.path.strip("/") or parts.query or parts.fragment:
        return url
    return f"{url.rstrip('/')}{JMAP_WELL_KNOWN}"


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


MAILBOX_PORTS: Final = {
    "IMAP": 143,
    "IMAPS": 993,
    "POP3": 110,
    "POP3S": 995,
    "GRAPH": 443,
    "JMAP": 443,
}
"""The port each incoming protocol uses when an account gives none."""
SMTP_PORTS: Final = {"auto": 587, "none": 25, "starttls": 587, "tls": 465}
"""The port each SMTP security mode uses when the connection gives none (``auto`` is
STARTTLS when offered, so it takes the submission port)."""
SmtpSecurity = Literal["auto", "none", "starttls", "tls"]
"""SMTP security. The seeds' words: CSM's "SSL" (and ConSol's SMTPS) is ``tls``, TLS from
the first byte; CSM's "TLS" (ConSol's SMTP+STARTTLS) is ``starttls``; "None" (ConSol's SMTP)
is ``none``; CSM's "Auto" is ``auto``."""
OutgoingProtocol = Literal["smtp", "graph", "jmap"]
"""How the sender hands mail on (``services.sender.registry`` has one adapter each)."""
LEGACY_DISPOSAL = frozenset({"delete_read_messages", "leave_on_server"})
"""Account fields replaced by ``after_fetch``, still read from configs written before it."""
GRAPH_URL: Final = "https://graph.microsoft.com/v1.0"
"""Microsoft Graph's v1.0 endpoint (national clouds and test stand-ins have their own)."""
GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
"""The app-only scope of Microsoft Graph: the application permissions granted to the app."""


def _graph_url_field(protocol: str) -> Any:
    """The ``graph_url`` field of an account or connection whose Graph protocol is named
    ``protocol``."""
    return Field(
        default=GRAPH_URL,
        max_length=1024,
        title="Graph URL",
        json_schema_extra=hints(group="Server", applies_to={"protocol": (protocol,)}),
    )


def _graph_mailbox_field(protocol: str, title: str) -> Any:
    """The ``graph_mailbox`` field (a user principal name or object id) of an account or
    connection whose Graph protocol is named ``protocol``."""
    return Field(
        default=None,
        max_length=320,
        title=title,
        json_schema_extra=hints(
            group="Server",
            applies_to={"protocol": (protocol,)},
            placeholder="the username's own mailbox",
        ),
    )


def _jmap_url_field(protocol: str) -> Any:
    """The ``jmap_url`` field of an account or connection whose JMAP protocol is named
    ``protocol``."""
    return Field(
        default=None,
        max_length=2048,
        title="JMAP session URL",
        json_schema_extra=hints(
            group="Server",
            placeholder="https://host/.well-known/jmap",
            applies_to={"protocol": (protocol,)},
        ),
    )


def _jmap_host(values: object) -> object:
    """Fill ``host`` from ``jmap_url`` when it is given and ``host`` is not: the URL names
    the server, so a JMAP account or connection with one needs no host."""
    if not isinstance(values, dict) or values.get("host") or not values.get("jmap_url"):
        return values
    return {**values, "host": urlsplit(str(values["jmap_url"])).hostname or ""}


def _need_host(host: str, protocol: str) -> None:
    """Refuse a missing host (``host`` has a default so the protocols that do not need it,
    GRAPH and JMAP with a URL, can leave it out on every surface)."""
    if not host:
        raise ValueError(
            f"host: give the server's host name or IP address (protocol {protocol}; only "
            "GRAPH, and JMAP with jmap_url, need none)"
        )


def _graph_host(values: object, *, scope: bool) -> object:
    """Fill ``host`` from the Graph URL (and the OAuth 2.0 scope with Graph's), so a Graph
    account or connection needs neither: its server is the URL."""
    if not isinstance(values, dict):
        return values
    url = values.get("graph_url") or GRAPH_URL
    filled = dict(values)
    if not filled.get("host"):
        filled["host"] = urlsplit(str(url)).hostname or ""
    if scope and not filled.get("scope") and not filled.get("credential"):
        filled["scope"] = GRAPH_SCOPE
    return filled


def _server_defaults(
    values: object, graph: str, jmap: str, *, scope: Literal["always", "with client_id"]
) -> object:
    """Fill a Graph or JMAP account's or connection's server fields from its URL (see
    ``_graph_host`` and ``_jmap_host``); ``graph`` and ``jmap`` name the protocols as the
    view spells them. ``scope``: whether Graph's scope is filled always or only beside a
    ``client_id`` (a connection without one borrows its client from an account)."""
    if not isinstance(values, dict):
        return values
    if values.get("protocol") == graph:
        with_scope = scope == "always" or bool(values.get("client_id"))
        return _graph_host(values, scope=with_scope)
    if values.get("protocol") == jmap:
        return _jmap_host(values)
    return values


def _graph_fields_fit(protocol: str, graph: str, url: str, mailbox: str | None) -> None:
    """Refuse a Graph URL that is not https, and Graph fields on another protocol;
    ``graph`` names the Graph protocol as the view spells it."""
    if protocol == graph:
        if not url.startswith("https://"):
            raise ValueError("graph_url must be an https:// URL")
    elif mailbox is not None or url != GRAPH_URL:
        raise ValueError(f"graph_mailbox and graph_url apply to protocol {graph} only")


def _jmap_url_fits(protocol: str, jmap: str, url: str | None) -> None:
    """Refuse ``jmap_url`` on another protocol than JMAP (named ``jmap`` as the view spells
    it) and a JMAP URL ``check_jmap_url`` refuses."""
    if url is None:
        return
    if protocol != jmap:
        raise ValueError(f"jmap_url applies to protocol {jmap} only")
    check_jmap_url(url)


class _Servers:
    """What an incoming account and an outgoing connection share about their server."""

    if TYPE_CHECKING:  # the views' fields; declared here for mypy only, not as fields
        protocol: str
        host: str
        port: int | None
        jmap_url: str | None
        graph_url: str

        @property
        def effective_port(self) -> int: ...

    @property
    def jmap_session_url(self) -> str:
        """JMAP: the session resource's URL (see ``jmap_url``)."""
        return jmap_session_url(self.jmap_url, self.host, self.port)

    @property
    def server(self) -> str:
        """The server as reports name it: the Graph URL, the JMAP session URL, or host:port."""
        # Accounts spell protocols in capitals (GRAPH), connections in lower case (graph).
        protocol = self.protocol.lower()
        if protocol == "graph":
            return self.graph_url
        if protocol == "jmap":
            return self.jmap_session_url
        return f"{self.host}:{self.effective_port}"


FOLDER_PROTOCOLS = ("IMAP", "IMAPS", "GRAPH", "JMAP")
_HOST_PROTOCOLS = ("IMAP", "IMAPS", "POP3", "POP3S", "JMAP")
"""Protocols whose server is host and port (JMAP: when ``jmap_url`` is empty); GRAPH's is
``graph_url``."""
"""Protocols with folders (and so a folder to fetch from and a start position)."""
JMAP_WELL_KNOWN = "/.well-known/jmap"
_OAUTH2 = hints(group="Sign-in", applies_to={"auth": ("oauth2",)})
_OWN_OUTGOING = hints(group="Outgoing server", applies_to={"outgoing_credentials": ("own",)})


class IncomingAccount(_View, _Servers):
    """One mailbox Mailroom fetches from."""

    name: str = Field(max_length=64, title="Name", json_schema_extra=hints(group="Account"))
    """The account's name, unique; everything refers to the account by it."""
    protocol: Literal["IMAP", "IMAPS", "POP3", "POP3S", "GRAPH", "JMAP"] = Field(
        default="IMAPS", title="Protocol", json_schema_extra=hints(group="Server")
    )
    """IMAP or POP3 (upgraded with STARTTLS, see ``security``), IMAPS or POP3S (TLS from the
    first byte), GRAPH: a Microsoft 365 mailbox through Microsoft Graph (HTTPS, OAuth 2.0;
    ``host`` and ``port`` follow from ``graph_url``), or JMAP (RFC 8620/8621 over HTTPS, see
    ``jmap_url``)."""
    security: Literal["none", "STARTTLS", "auto"] = Field(
        default="auto",
        title="Security",
        json_schema_extra=hints(group="Server", applies_to={"protocol": ("IMAP", "POP3")}),
    )
    """For IMAP and POP3 (IMAPS/POP3S are TLS from the first byte; JMAP's is its URL's
    scheme): ``STARTTLS`` requires the upgrade, ``auto`` upgrades when the server offers it
    and otherwise refuses to send the password in clear, ``none`` sends it in clear (an
    explicit, logged choice)."""
    host: HostName = Field(
        default="",
        max_length=255,
        title="Host",
        json_schema_extra=hints(
            group="Server",
            applies_to={"protocol": _HOST_PROTOCOLS},
            placeholder_by={"protocol": {"JMAP": "from jmap_url"}},
        ),
    )
    """The mail server's host name; GRAPH needs none (its server is ``graph_url``), nor does
    JMAP with ``jmap_url``."""
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        title="Port",
        json_schema_extra=hints(
            group="Server",
            placeholder_by={"protocol": {k: str(v) for k, v in MAILBOX_PORTS.items()}},
            applies_to={"protocol": _HOST_PROTOCOLS},
        ),
    )
    """The server port; empty: the protocol's standard port (143, 993, 110, 995, 443)."""
    jmap_url: str | None = _jmap_url_field("JMAP")
    """JMAP: the session URL (e.g. ``https://api.fastmail.com/jmap/session``) or the server's
    base URL (``/.well-known/jmap`` is added); empty: ``https://host[:port]/.well-known/jmap``.
    ``http://`` is accepted for a loopback host only (a password never crosses a network in
    clear)."""
    folder: HeaderText = Field(
        default="INBOX",
        max_length=255,
        title="Folder",
        json_schema_extra=hints(group="Mailbox", applies_to={"protocol": FOLDER_PROTOCOLS}),
    )
    """The IMAP folder mail is taken from (POP3 knows only INBOX); with GRAPH the folder's
    display name (``INBOX`` is the inbox; ``Parent/Child`` for a child folder); JMAP: the
    mailbox's name or role, ``INBOX`` being the mailbox with role ``inbox``."""
    graph_mailbox: HeaderText | None = _graph_mailbox_field("GRAPH", "Mailbox (UPN or id)")
    """GRAPH: the mailbox read, as user principal name or object id, e.g. a shared mailbox
    ``support@contoso.com`` the app may read; empty: the username's mailbox."""
    graph_url: HeaderText = _graph_url_field("GRAPH")
    """GRAPH: Microsoft Graph's v1.0 endpoint (another for a national cloud)."""
    username: NonEmptyText = Field(
        max_length=320, title="Username", json_schema_extra=hints(group="Sign-in")
    )
    """The login name."""
    password: SecretStr | None = Field(
        default=None,
        max_length=1024,
        title="Password",
        json_schema_extra=hints(group="Sign-in", applies_to={"auth": ("basic",)}),
    )
    """The login password (secret, stored encrypted); needed with auth ``basic``."""
    after_fetch: Literal["inherit", "seen", "move", "delete"] = Field(
        default="inherit",
        title="After fetching",
        json_schema_extra=hints(group="Mailbox"),
    )
    # Replaces the account's delete_read_messages (yes: delete, no: seen) and POP3's
    # leave_on_server (on: seen, off: delete), still read from older configs by
    # _legacy_disposal; a POP3 account without it deletes, as POP3 always did.
    """What happens to a mail on the server once stored and announced: ``seen`` flags it
    read and keeps it (POP3: keeps it), ``move`` moves it to ``move_to_folder``, ``delete``
    deletes it; ``inherit`` follows the global ``delete_read_messages``."""
    move_to_folder: str | None = Field(
        default=None,
        max_length=255,
        title="Move to folder",
        json_schema_extra=hints(
            group="Mailbox",
            applies_to={"protocol": FOLDER_PROTOCOLS, "after_fetch": ("move",)},
        ),
    )
    """The folder fetched mail is moved to with ``after_fetch`` ``move``; it must exist
    (the connection test refuses a missing one)."""
    debug: Literal["inherit", "yes", "no"] = Field(
        default="inherit", title="Debug", json_schema_extra=hints(group="Account")
    )
    """Protocol trace of this account's IMAP/POP3 conversation in the logs (secrets
    redacted); ``inherit`` follows the global ``debug_protocol`` setting."""
    enabled: bool = Field(default=True, title="Enabled", json_schema_extra=hints(group="Account"))
    """Whether mail is fetched from this account (a deactivated one keeps its settings)."""
    verify_tls: bool = Field(
        default=True, title="Verify TLS certificate", json_schema_extra=hints(group="Server")
    )
    """Verify the server's TLS certificate (switch off only for test servers)."""
    ca_file: str | None = Field(
        default=None,
        max_length=4096,
        title="CA file",
        json_schema_extra=hints(group="Server", placeholder="the system's CA store"),
    )
    """CA file that signed the server's certificate; empty: the system store."""
    auth: Literal["basic", "oauth2"] = Field(
        default="basic", title="Authentication method", json_schema_extra=hints(group="Sign-in")
    )
    """``oauth2``: XOAUTH2 with a token from msal's client-credentials flow (then the client
    fields below are needed, and the connection must be TLS)."""
    client_id: HeaderText | None = Field(
        default=None, max_length=255, title="Client ID", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 client (application) id."""
    client_secret: SecretStr | None = Field(
        default=None, max_length=4096, title="Client secret", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 client secret (secret, stored encrypted)."""
    authority: HeaderText | None = Field(
        default=None, max_length=1024, title="Authority", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 authority, e.g. ``https://login.microsoftonline.com/<tenant>``."""
    scope: HeaderText | None = Field(
        default=None, max_length=1024, title="Scope", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 scope, e.g. ``https://outlook.office365.com/.default``."""
    oauth_ca_file: str | None = Field(
        default=None, max_length=4096, title="Token issuer CA file", json_schema_extra=_OAUTH2
    )
    """CA that signed a private token issuer's certificate; None: the system store."""
    credential: str | None = Field(
        default=None,
        max_length=64,
        title="Credential",
        json_schema_extra=hints(group="Sign-in", applies_to={"auth": ("oauth2",)}),
    )
    """A named credential (``mailroom credentials``) to sign in with, in place of the client
    fields here: an OAuth 2.0 one, or a static API token (Fastmail, Stalwart) sent as the
    bearer token; the username is the mailbox it logs in to."""
    start_position: Literal["all", "new", "since"] = Field(
        default="all",
        title="Start with",
        json_schema_extra=hints(group="Mailbox", applies_to={"protocol": FOLDER_PROTOCOLS}),
    )
    """Where a new account starts (IMAP, JMAP): all mail in the folder, only mail arriving from now
    on, or mail received on or after ``start_date``; older mail is left untouched."""
    start_date: date | None = Field(
        default=None,
        title="Start date",
        json_schema_extra=hints(
            group="Mailbox", placeholder="YYYY-MM-DD", applies_to={"start_position": ("since",)}
        ),
    )
    """The first day taken with ``start_position`` ``since`` (YYYY-MM-DD)."""

    outgoing_host: HostName | None = Field(
        default=None,
        max_length=255,
        title="Outgoing (SMTP) server",
        json_schema_extra=hints(
            group="Outgoing server", placeholder="none: the global outgoing connection"
        ),
    )
    """The account's own SMTP server: answers to cases whose mail came in on this account
    go out through it; empty: through the global outgoing connection (``outgoing/smtp``).
    ``verify_tls`` and ``ca_file`` apply to it as to the incoming server."""
    outgoing_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        title="Outgoing port",
        json_schema_extra=hints(
            group="Outgoing server",
            placeholder_by={"outgoing_security": {k: str(v) for k, v in SMTP_PORTS.items()}},
        ),
    )
    """The SMTP port; empty: the standard one for the security mode (587, 25, 587, 465)."""
    outgoing_security: SmtpSecurity = Field(
        default="auto", title="Outgoing security", json_schema_extra=hints(group="Outgoing server")
    )
    """``auto``: STARTTLS when offered, and no password in clear when not; ``starttls``
    requires the upgrade; ``tls`` is TLS from the first byte (CSM's "SSL"); ``none`` sends in
    clear (logged)."""
    outgoing_credentials: Literal["incoming", "own", "none"] = Field(
        default="incoming",
        title="Outgoing sign-in",
        json_schema_extra=hints(group="Outgoing server"),
    )
    """``incoming``: the same username and password (or OAuth 2.0 client) as the incoming
    server (CSM's "Use same settings as my incoming server"); ``own``: ``outgoing_username``
    and ``outgoing_password``; ``none``: send without AUTH."""
    outgoing_username: NonEmptyText | None = Field(
        default=None, max_length=320, title="Outgoing username", json_schema_extra=_OWN_OUTGOING
    )
    """The SMTP login name with ``outgoing_credentials`` ``own``."""
    outgoing_password: SecretStr | None = Field(
        default=None, max_length=1024, title="Outgoing password", json_schema_extra=_OWN_OUTGOING
    )
    """The SMTP password with ``outgoing_credentials`` ``own`` (secret, stored encrypted)."""
    from_address: EmailStr | None = Field(
        default=None,
        max_length=320,
        title="From address",
        json_schema_extra=hints(group="From settings", placeholder="the global From address"),
    )
    """The From of answers to this account's cases; must be in ``addresses/allowed_from``
    when that list is not empty; empty: the global From."""
    from_name: HeaderText | None = Field(
        default=None,
        max_length=255,
        title="Display name",
        json_schema_extra=hints(group="From settings", placeholder="the global From's name"),
    )
    """The display name shown with the From address; empty: the global From's name."""
    reply_to: EmailStr | None = Field(
        default=None,
        max_length=320,
        title="Reply-To address",
        json_schema_extra=hints(group="From settings"),
    )
    """The Reply-To of answers to this account's cases; empty: the global Reply-To, unless
    the account has its own From address (replies then go to that From)."""
    poll_interval_seconds: float | None = Field(
        default=None,
        ge=0.2,
        le=86_400,
        title="Poll interval (seconds)",
        json_schema_extra=hints(group="Mailbox", placeholder="the global poll interval"),
    )
    """Seconds between two fetches of this account without IMAP IDLE; empty: the global
    ``settings/poll_interval_seconds``."""
    available_to_users: bool = Field(
        default=True,
        title="Make account available to users",
        json_schema_extra=hints(group="Account"),
    )
    """Whether the surrounding case system may offer this account for agents' mail (CSM's
    "Make account available to users"); Mailroom itself fetches and answers either way."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ACCOUNT_NAME.match(value):
            raise ValueError(
                "account name must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _legacy_disposal(cls, data: Any) -> Any:
        """Configs written before ``after_fetch`` (exports, stored accounts) still load:
        their ``delete_read_messages`` and ``leave_on_server`` become ``after_fetch`` with
        the same effect when it is not given. POP3 deleted unless ``leave_on_server``,
        whatever the global setting, so a POP3 account without ``after_fetch`` deletes."""
        if not isinstance(data, dict):
            return data
        pop3 = str(data.get("protocol", "IMAPS")).startswith("POP3")
        if not (pop3 or LEGACY_DISPOSAL & data.keys()):
            return data
        data = dict(data)
        delete = data.pop("delete_read_messages", None)
        leave = data.pop("leave_on_server", None)
        if data.get("after_fetch") is not None:
            return data
        if pop3:
            data["after_fetch"] = "seen" if leave in (True, "true", "on", "yes") else "delete"
        elif delete is not None:
            data["after_fetch"] = {"yes": "delete", "no": "seen"}.get(str(delete), "inherit")
        return data

    @model_validator(mode="before")
    @classmethod
    def _graph_server(cls, values: object) -> object:
        return _server_defaults(values, "GRAPH", "JMAP", scope="always")

    @model_validator(mode="after")
    def _protocol_fits(self) -> IncomingAccount:
        _need_host(self.host, self.protocol)
        self._graph_fits()
        if self.uses_tls and self.security != "auto":
            # IMAPS/POP3S are TLS from the first byte: STARTTLS cannot happen and "none"
            # (password in clear) would not be what the connection does.
            raise ValueError(
                f"security {self.security} does not apply to {self.protocol}, which is TLS "
                f"from the first byte; use security auto, or protocol {self.protocol[:-1]} "
                f"with security {self.security}"
            )
        self._jmap_fits()
        if self.auth == "basic" and not _given(self.password):
            raise ValueError(
                "auth basic needs a password: set password (or use auth oauth2 with a client)"
            )
        if self.is_pop3 and self.folder != "INBOX":
            raise ValueError(
                f"folder {self.folder!r} cannot be used with {self.protocol}: POP3 knows only "
                "the inbox; leave the folder at INBOX or use IMAP/IMAPS"
            )
        if self.auth == "oauth2":
            client = ("client_id", "client_secret", "authority", "scope")
            _one_client(self.credential, client, self)
            needed = () if self.credential is not None else client
            missing = [f for f in needed if getattr(self, f) is None]
            if missing:
                raise ValueError(f"auth oauth2 needs {', '.join(missing)}")
            if self.credential is None and not str(self.authority).startswith("https://"):
                raise ValueError("the OAuth 2.0 authority must be an https:// URL")
            if self.security == "none":
                raise ValueError(
                    "OAuth 2.0 tokens are only sent over TLS: use "
                    f"{self.protocol}S, or security STARTTLS or auto"
                )
        elif self.credential is not None:
            raise ValueError("a credential signs in with OAuth 2.0: set auth oauth2 with it")
        if self.start_position != "all" and self.is_pop3:
            raise ValueError(
                "start_position applies to IMAP, GRAPH and JMAP only: POP3 takes and deletes all "
                "mail in the maildrop"
            )
        if (self.start_position == "since") != (self.start_date is not None):
            raise ValueError("start_position 'since' needs start_date, and only it takes one")
        if (self.after_fetch == "move") != (self.move_to_folder is not None):
            raise ValueError(
                "after_fetch 'move' needs move_to_folder, and only it takes one: "
                "name the folder fetched mail goes to"
            )
        if self.after_fetch == "move" and self.is_pop3:
            raise ValueError(
                "after_fetch 'move' cannot be used with POP3, which has no folders: "
                "use seen (keep the mail) or delete"
            )
        self._outgoing_fits()
        return self

    def _graph_fits(self) -> None:
        graph = self.protocol == "GRAPH"
        if graph and self.auth != "oauth2":
            raise ValueError(
                "protocol GRAPH signs in with OAuth 2.0 only: set auth oauth2 with a client "
                "(client_id, client_secret, authority) or a credential"
            )
        _graph_fields_fit(self.protocol, "GRAPH", self.graph_url, self.graph_mailbox)
        if graph and self.security != "auto":
            raise ValueError("security does not apply to GRAPH (always HTTPS): leave it auto")

    def _jmap_fits(self) -> None:
        if self.protocol == "JMAP" and self.security != "auto":
            raise ValueError(
                "security does not apply to JMAP: its transport security is the scheme of "
                "jmap_url (https://); leave security at auto"
            )
        _jmap_url_fits(self.protocol, "JMAP", self.jmap_url)

    def _outgoing_fits(self) -> None:
        own = self.outgoing_credentials == "own"
        if self.outgoing_host is None:
            given = [
                f
                # Not the password: a client cannot clear a stored secret (None keeps it).
                for f in ("outgoing_port", "outgoing_username")
                if getattr(self, f) is not None
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} "
                    "outgoing_host: set the account's SMTP server, "
                    "or leave them empty to use the global outgoing connection"
                )
            return
        if own and (self.outgoing_username is None or not _given(self.outgoing_password)):
            raise ValueError(
                "outgoing_credentials own needs outgoing_username and outgoing_password "
                "(or outgoing_credentials incoming or none)"
            )
        oauth = self.outgoing_credentials == "incoming" and self.auth == "oauth2"
        if oauth and self.outgoing_security == "none":
            raise ValueError(
                "outgoing_security none cannot carry the OAuth 2.0 token of the incoming "
                "sign-in: use auto, starttls or tls"
            )

    def outgoing_connection(self, base: OutgoingConnection | None) -> OutgoingConnection | None:
        """The account's own SMTP connection (None without ``outgoing_host``), with the
        credentials it names and the limits (timeouts, concurrency) of ``base``, the global
        connection, when there is one."""
        if self.outgoing_host is None:
            return None
        limits = ("connect_timeout_ms", "send_timeout_ms", "concurrency")
        values: dict[str, object] = {f: getattr(base, f) for f in limits} if base else {}
        values.update(
            host=self.outgoing_host,
            port=self.outgoing_port,
            security=self.outgoing_security,
            verify_tls=self.verify_tls,
            ca_file=self.ca_file,
        )
        if self.outgoing_credentials == "own":
            values.update(username=self.outgoing_username, password=self.outgoing_password)
        elif self.outgoing_credentials == "incoming":
            sign_in = ("username", "password", "auth", "client_id", "client_secret")
            values.update({f: getattr(self, f) for f in (*sign_in, "authority", "scope")})
            values.update(oauth_ca_file=self.oauth_ca_file, credential=self.credential)
            if self.auth == "oauth2":
                values["password"] = None
        return OutgoingConnection.model_validate(values)

    @property
    def is_pop3(self) -> bool:
        """True for POP3 and POP3S."""
        return self.protocol in ("POP3", "POP3S")

    @property
    def effective_port(self) -> int:
        """The configured port, or the protocol's standard one."""
        return self.port or MAILBOX_PORTS[self.protocol]

    @property
    def uses_tls(self) -> bool:
        """True when the connection is TLS from the first byte."""
        return self.protocol in ("IMAPS", "POP3S")

    def disposal(self, default_delete: bool) -> Disposal:
        """What happens to fetched mail on the server, resolving ``inherit`` against the
        global ``delete_read_messages`` (``default_delete``)."""
        if self.after_fetch == "inherit":
            return "delete" if default_delete else "seen"
        return self.after_fetch

    def polls_every(self, default: float) -> float:
        """Seconds between two fetches: the account's own interval, else ``default``."""
        return self.poll_interval_seconds or default

    def debugs(self, default: bool) -> bool:
        """Whether the protocol is traced, resolving ``inherit`` against the global default."""
        return default if self.debug == "inherit" else self.debug == "yes"


MAX_SMTP_CONCURRENCY = 32
"""Upper bound of ``OutgoingConnection.concurrency``; the sender's prefetch matches it."""


class OutgoingConnection(_View, _Servers):
    """The connection the sender uses: SMTP, Microsoft Graph's ``sendMail``, or JMAP
    submission."""

    protocol: OutgoingProtocol = Field(
        default="smtp", title="Protocol", json_schema_extra=hints(group="Server")
    )
    """``smtp``: SMTP submission; ``graph``: Microsoft Graph's ``sendMail`` with the MIME body
    over HTTPS (OAuth 2.0 only; ``host`` and ``port`` follow from ``graph_url``); ``jmap``:
    JMAP ``EmailSubmission/set`` (RFC 8621) to the server at ``jmap_url`` (or
    ``https://host/.well-known/jmap``)."""
    graph_url: HeaderText = _graph_url_field("graph")
    """graph: Microsoft Graph's v1.0 endpoint (another for a national cloud)."""
    graph_mailbox: HeaderText | None = _graph_mailbox_field(
        "graph", "Send from mailbox (UPN or id)"
    )
    """graph: the mailbox mail is sent from (a shared mailbox the app may send as); empty:
    the username's mailbox."""
    host: HostName = Field(
        default="",
        max_length=255,
        title="SMTP server",
        json_schema_extra=hints(
            group="Server",
            applies_to={"protocol": ("smtp", "jmap")},
            placeholder_by={"protocol": {"jmap": "from jmap_url"}},
        ),
    )
    """The SMTP server's host name (JMAP: the server's, needed only when ``jmap_url`` is
    empty; graph needs none, its server is ``graph_url``)."""
    jmap_url: str | None = _jmap_url_field("jmap")
    """JMAP: the session URL or the server's base URL, as for an incoming JMAP account."""
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        title="Port",
        json_schema_extra=hints(
            group="Server",
            placeholder_by={"security": {k: str(v) for k, v in SMTP_PORTS.items()}},
            applies_to={"protocol": ("smtp", "jmap")},
        ),
    )
    """The server port; empty: the standard one for the security mode (25, 587, 465)."""
    security: SmtpSecurity = Field(
        default="starttls",
        title="Security",
        json_schema_extra=hints(group="Server", applies_to={"protocol": ("smtp",)}),
    )
    """``starttls`` upgrades the connection (CSM's "TLS"), ``tls`` is TLS from the first byte
    (CSM's "SSL", SMTPS), ``auto`` upgrades when the server offers STARTTLS and otherwise
    sends no password in clear (CSM's "Auto"), ``none`` stays in clear."""
    username: NonEmptyText | None = Field(
        default=None,
        max_length=320,
        title="Username",
        json_schema_extra=hints(group="Sign-in", placeholder="none: send without AUTH"),
    )
    """The login name; unset: no AUTH."""
    password: SecretStr | None = Field(
        default=None,
        max_length=1024,
        title="Password",
        json_schema_extra=hints(group="Sign-in", applies_to={"auth": ("basic",)}),
    )
    """The login password (secret, stored encrypted); needed with a username and auth
    ``basic``."""
    connect_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        le=600_000,
        title="Connect timeout (ms)",
        json_schema_extra=hints(group="Limits"),
    )
    """How long connecting and the greeting may take."""
    send_timeout_ms: int = Field(
        default=60_000,
        ge=100,
        le=3_600_000,
        title="Send timeout (ms)",
        json_schema_extra=hints(group="Limits"),
    )
    """How long sending one mail may take."""
    concurrency: int = Field(
        default=1,
        title="Parallel connections",
        # Bounds for the schema only: the validator's refusal explains them.
        json_schema_extra={"minimum": 1, "maximum": MAX_SMTP_CONCURRENCY, **hints(group="Limits")},
    )
    """SMTP connections the sender uses in parallel, each reused across mails."""
    verify_tls: bool = Field(
        default=True, title="Verify TLS certificate", json_schema_extra=hints(group="Server")
    )
    """Verify the server's TLS certificate (switch off only for test servers)."""
    ca_file: str | None = Field(
        default=None,
        max_length=4096,
        title="CA file",
        json_schema_extra=hints(group="Server", placeholder="the system's CA store"),
    )
    """CA file that signed the server's certificate; empty: the system store."""
    auth: Literal["basic", "oauth2"] = Field(
        default="basic", title="Authentication method", json_schema_extra=hints(group="Sign-in")
    )
    """``basic``: AUTH with username and password (none without a username); ``oauth2``:
    XOAUTH2 for ``username`` with a token from msal's client-credentials flow."""
    client_id: HeaderText | None = Field(
        default=None, max_length=255, title="Client ID", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 client (application) id."""
    client_secret: SecretStr | None = Field(
        default=None, max_length=1024, title="Client secret", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 client secret (secret, stored encrypted)."""
    authority: HeaderText | None = Field(
        default=None, max_length=1024, title="Authority", json_schema_extra=_OAUTH2
    )
    """OAuth 2.0 authority, e.g. ``https://login.microsoftonline.com/<tenant>``."""
    scope: HeaderText | None = Field(
        default=None, max_length=1024, title="Scope", json_schema_extra=_OAUTH2
    )
    """E.g. ``https://outlook.office365.com/.default``."""
    oauth_ca_file: str | None = Field(
        default=None, max_length=4096, title="Token issuer CA file", json_schema_extra=_OAUTH2
    )
    """CA that signed a private token issuer's certificate; None: the system store."""
    credential: str | None = Field(
        default=None,
        max_length=64,
        title="Credential",
        json_schema_extra=hints(group="Sign-in", applies_to={"auth": ("oauth2",)}),
    )
    """A named credential (``mailroom credentials``) to sign in with, in place of the client
    fields here: an OAuth 2.0 one, or a static API token (Fastmail, Stalwart) sent as the
    bearer token; the username is the mailbox it sends as."""
    credentials_from: str | None = Field(
        default=None,
        max_length=64,
        title="Same credentials as incoming account",
        json_schema_extra=hints(group="Sign-in"),
    )
    """Use the username, password or OAuth 2.0 client of this incoming account (CSM's
    "same credentials as incoming"); the fields here are then left empty."""

    @property
    def effective_port(self) -> int:
        """The configured port, or the standard one for the security mode."""
        return self.port or SMTP_PORTS[self.security]

    def with_credentials_of(self, account: IncomingAccount) -> OutgoingConnection:
        """This connection with the credentials of ``account`` in place of its own."""
        fields = ("username", "password", "auth", "client_id", "client_secret", "authority")
        update = {f: getattr(account, f) for f in (*fields, "scope", "oauth_ca_file", "credential")}
        return self.model_copy(update={**update, "credentials_from": None})

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        if not 1 <= value <= MAX_SMTP_CONCURRENCY:
            raise ValueError(
                f"concurrency is the number of SMTP connections used in parallel: "
                f"from 1 to {MAX_SMTP_CONCURRENCY}, not {value}"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _graph_server(cls, values: object) -> object:
        return _server_defaults(values, "graph", "jmap", scope="with client_id")

    @model_validator(mode="after")
    def _auth_complete(self) -> OutgoingConnection:
        _need_host(self.host, self.protocol)
        if self.protocol == "graph" and self.auth != "oauth2" and self.credentials_from is None:
            raise ValueError(
                "protocol graph sends with OAuth 2.0 only: set auth oauth2 with a client "
                "or a credential (Graph has no password login)"
            )
        _graph_fields_fit(self.protocol, "graph", self.graph_url, self.graph_mailbox)
        _jmap_url_fits(self.protocol, "jmap", self.jmap_url)
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")
        basic_login = self.auth == "basic" and self.username and self.credentials_from is None
        if basic_login and not _given(self.password):
            raise ValueError(
                f"auth basic with username {self.username!r} needs a password: set password, "
                "or leave username unset to send without AUTH"
            )
        oauth = ("client_id", "client_secret", "authority", "scope")
        if self.credentials_from is not None:
            mine = ("username", "password", *oauth, "credential")
            own = [f for f in mine if getattr(self, f) is not None]
            if own or self.auth != "basic":
                raise ValueError(
                    f"credentials_from {self.credentials_from!r} takes the credentials of that "
                    f"incoming account; leave {', '.join(own) or 'auth'} unset"
                )
        if self.auth == "oauth2":
            _one_client(self.credential, oauth, self)
            needed = ("username",) if self.credential is not None else ("username", *oauth)
            missing = [f for f in needed if getattr(self, f) is None]
            if missing:
                raise ValueError(f"auth oauth2 needs {', '.join(missing)}")
            if self.credential is None and not str(self.authority).startswith("https://"):
                raise ValueError("the OAuth 2.0 authority must be an https:// URL")
            if self.security == "none":
                raise ValueError(
                    "OAuth 2.0 tokens are only sent over TLS: use auto, starttls or tls"
                )
        elif self.credential is not None:
            raise ValueError("a credential signs in with OAuth 2.0: set auth oauth2 with it")
        return self


class GlobalSettings(_View):
    """Settings every service shares."""

    incoming_subject_pattern: str = r"\[Case#(?P<case>\d+)\]"
    """Regex finding the case reference in an incoming subject, as the group ``(?P<case>…)``."""
    outgoing_subject_template: str = "{{ subject }} [Case#{{ case }}]"
    """Jinja2 template of outgoing subjects; the incoming pattern must find ``{{ case }}`` in it."""
    poll_interval_seconds: float = Field(default=30.0, ge=0.2, le=86_400)
    """Seconds between two fetches of an account (without IMAP IDLE); an account's own
    ``poll_interval_seconds`` overrides it."""
    delete_read_messages: bool = False
    """Delete mail from the server once stored (accounts may override it)."""
    debug_protocol: bool = False
    """Trace every account's IMAP/POP3 conversation in the logs (accounts override it with
    their own ``debug``); passwords, tokens and AUTH payloads are redacted."""
    fetch_retries: int = Field(default=5, ge=0, le=100)
    """Failed fetches in a row before the administrators are notified."""
    connect_timeout_seconds: float = Field(default=30.0, ge=1, le=600)
    """How long connecting to a mail server may take."""
    max_mail_size_mb: float = Field(default=100.0, ge=0.01, le=2048)
    """Mail above this size is stored as a stub (its headers and the reason) and left on
    the server, never dropped."""
    fetcher_lease_seconds: float = Field(default=15.0, ge=1.0, le=300.0)
    """How long a fetcher instance holds an account without renewing (it renews every third
    of it, at most every 2 s), and how old a heartbeat may be for the instance to count as
    alive: a killed instance's accounts move after at most this long."""
    credential_warning_days: int = Field(default=14, ge=1, le=365)
    """Days before an OAuth 2.0 credential's client secret, certificate or refresh token
    expires that the administrators are mailed (once a day until it is renewed)."""

    @field_validator("incoming_subject_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"incoming subject pattern is not a valid regex: {exc}") from exc
        if "case" not in compiled.groupindex:
            raise ValueError(
                "incoming subject pattern needs a named group (?P<case>...) "
                "that captures the case reference"
            )
        return value

    @field_validator("outgoing_subject_template")
    @classmethod
    def _template_renders(cls, value: str) -> str:
        # Rendered with sample values when saved: a template failing at render time (a
        # syntax error, {{ 1/0 }}) is refused here, naming this field, not at the first mail.
        one_line_template(value)
        render_subject(value, case=SAMPLE_CASE_REFERENCE, subject=SAMPLE_SUBJECT)
        return value

    @model_validator(mode="after")
    def _template_round_trips(self) -> GlobalSettings:
        rendered = render_subject(
            self.outgoing_subject_template, case=SAMPLE_CASE_REFERENCE, subject=SAMPLE_SUBJECT
        )
        found = find_case_reference(self.incoming_subject_pattern, rendered)
        if found != SAMPLE_CASE_REFERENCE:
            raise ValueError(
                f"outgoing subject template {self.outgoing_subject_template!r} renders "
                f"{rendered!r} for case {SAMPLE_CASE_REFERENCE}, but the incoming subject "
                f"pattern {self.incoming_subject_pattern!r} "
                + ("finds no case reference in it" if found is None else f"finds {found!r}")
                + "; replies would open new cases. Put {{ case }} into the template in the "
                "form the pattern expects, or change the pattern."
            )
        return self


class Addresses(_View):
    """The Addresses tab: sender identities of outgoing mail and who hears about problems."""

    from_address: MailAddress = MailAddress(name="Helpdesk", address="helpdesk@example.com")
    """The From of outgoing mail; must be in ``allowed_from`` when that list is not empty."""
    reply_to: MailAddress | None = None
    """The Reply-To of outgoing mail; empty: replies go to the From address."""
    allowed_from: tuple[EmailStr, ...] = Field(default=(), max_length=100)
    """The only From addresses outgoing mail may use; empty allows any."""
    administrators: tuple[MailAddress, ...] = Field(default=(), max_length=50)
    """Who runs this Mailroom: technical notifications (an incoming account failing) go to
    them."""
    notification_recipients: tuple[MailAddress, ...] = Field(default=(), max_length=50)
    """Further recipients of the technical notifications (a team list, a monitoring
    mailbox), in addition to the administrators."""

    @property
    def technical_recipients(self) -> tuple[MailAddress, ...]:
        """Administrators, then notification recipients, each address once."""
        seen: set[str] = set()
        out: list[MailAddress] = []
        for person in (*self.administrators, *self.notification_recipients):
            if str(person.address).lower() not in seen:
                seen.add(str(person.address).lower())
                out.append(person)
        return tuple(out)

    def from_allowed(self, address: str) -> bool:
        """Whether outgoing mail may be sent From ``address``."""
        return not self.allowed_from or address.lower() in {a.lower() for a in self.allowed_from}

    @model_validator(mode="after")
    def _from_is_allowed(self) -> Addresses:
        if not self.from_allowed(str(self.from_address.address)):
            raise ValueError(
                f"from_address {self.from_address.address} is not in allowed_from "
                f"({', '.join(self.allowed_from)}); add it there or choose an allowed one"
            )
        return self


class ScriptSetting(_View):
    """One incoming-mail script and whether it runs."""

    name: str
    """The script's entry-point name."""
    enabled: bool = True
    """Whether it runs."""


class ProcessorSettings(_View):
    """Which incoming-mail scripts run, in which order, and their parameters."""

    incoming_scripts: tuple[ScriptSetting, ...] = (
        ScriptSetting(name="size_limit"),
        ScriptSetting(name="duplicates"),
        ScriptSetting(name="bounce_handler"),
        ScriptSetting(name="complaint_handler"),
        ScriptSetting(name="auto_reply"),
        ScriptSetting(name="rate_limit"),
        ScriptSetting(name="suppressed"),
        ScriptSetting(name="reject_subject", enabled=False),
        ScriptSetting(name="case_matcher"),
    )
    """The incoming-mail scripts in the order they run, each enabled or not."""
    reject_subject_pattern: str | None = None
    """Regex of subjects the ``reject_subject`` script refuses."""
    acknowledge_new_cases: bool = True
    """Mail the sender an acknowledgement when their mail opens a new case."""
    non_participant_opens_new_case: bool = False
    """A subject match from a sender who never took part in the case opens a new case."""
    max_automatic_answers_per_hour: int = Field(default=5, ge=0, le=10_000)
    """Per sender address; protects against loops with systems that ignore Auto-Submitted."""
    max_mail_size_bytes: int = Field(default=25_000_000, ge=10_000)
    """Above it a mail is attached without its attachments, with a note saying so."""
    processing_timeout_seconds: float = Field(default=60.0, ge=1, le=3600)
    """A mail whose processing takes longer goes to the desk instead of blocking the queue."""
    duplicate_window_hours: float = Field(default=72.0, gt=0, le=24 * 90)
    """A mail with the Message-ID and content of one processed this recently is a second copy
    (the ``duplicates`` script attaches it to the first copy's case)."""

    _regex = field_validator("reject_subject_pattern")(optional_regex)

    @field_validator("incoming_scripts")
    @classmethod
    def _unique(cls, value: tuple[ScriptSetting, ...]) -> tuple[ScriptSetting, ...]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError("each script may appear only once")
        installed = {ep.name for ep in entry_points(group="mailroom.incoming_scripts")}
        unknown = sorted(set(names) - installed)
        if unknown:
            raise ValueError(
                f"no incoming-mail script named {', '.join(unknown)}; "
                f"installed: {', '.join(sorted(installed))}"
            )
        return value


class SystemConfig(_View):
    """Everything the services read from the properties, at one version."""

    version: int = 0
    accounts: dict[str, IncomingAccount] = Field(default_factory=dict)
    outgoing: OutgoingConnection | None = None
    settings: GlobalSettings = GlobalSettings()
    addresses: Addresses = Addresses()
    processor: ProcessorSettings = ProcessorSettings()
    conversation: ConversationSettings = ConversationSettings()
    templates: TemplateSettings = TemplateSettings()
    system: SystemSettings = SystemSettings()
    sender: SenderSettings = SenderSettings()

    @model_validator(mode="after")
    def _outgoing_credentials_exist(self) -> SystemConfig:
        name = self.outgoing.credentials_from if self.outgoing else None
        if name is not None and name not in self.accounts:
            raise ValueError(
                f"outgoing/smtp: credentials_from names incoming account {name!r}, which does "
                f"not exist (accounts: {', '.join(sorted(self.accounts)) or 'none'})"
            )
        for account in self.accounts.values():
            if account.from_address and not self.addresses.from_allowed(account.from_address):
                raise ValueError(
                    f"incoming.accounts/{account.name}: from_address {account.from_address} "
                    f"is not in addresses/allowed_from ({', '.join(self.addresses.allowed_from)});"
                    " add it there or choose an allowed one"
                )
        return self
