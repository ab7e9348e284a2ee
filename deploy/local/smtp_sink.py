"""SMTP sink for local development and tests, run as its own process by ``servers.py``.

Listens on 127.0.0.1 with two ports chosen by the kernel: plain SMTP (STARTTLS offered, not
required) and implicit TLS (SMTPS). AUTH PLAIN/LOGIN is offered, not required. Every accepted
message is stored in a Maildir, prefixed with X-Sink-Mail-From, X-Sink-Rcpt-To and X-Sink-Auth
headers. Once both ports are bound, their numbers are written as JSON to ``--ready-file``.

Usage: smtp_sink.py --maildir DIR --cert PEM --key PEM --users-file JSON --ready-file JSON
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Authenticator = Callable[[SMTP, Session, Envelope, str, object], AuthResult]


class MaildirSink:
    """aiosmtpd handler that stores every accepted message in a Maildir."""

    def __init__(self, maildir: Path) -> None:
        self._maildir = maildir
        self._seq = itertools.count()
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message with its envelope as headers and accept it."""
        headers = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Sink-Auth: {session.auth_data}\r\n"
        )
        # Time first, then a counter: file names sort in arrival order, even across restarts.
        name = f"{time.time_ns()}.{next(self._seq):08d}.mailroom-sink"
        await asyncio.to_thread(
            self._store, name, headers.encode() + (envelope.original_content or b"")
        )
        return "250 OK queued"

    def _store(self, name: str, data: bytes) -> None:
        tmp = self._maildir / "tmp" / name
        tmp.write_bytes(data)
        # Maildir delivery: readers never see a half-written file in new/.
        tmp.rename(self._maildir / "new" / name)


def make_authenticator(users: dict[str, str]) -> Authenticator:
    """Return an aiosmtpd authenticator that checks login/password against ``users``."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        login = ""
        ok = False
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            ok = users.get(login) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    return authenticate


async def serve(
    handler: MaildirSink, users: dict[str, str], tls: ssl.SSLContext, ready: Path
) -> None:
    """Run both listeners until SIGTERM or SIGINT; announce their ports in ``ready``."""
    authenticator = make_authenticator(users)

    def smtp(starttls: ssl.SSLContext | None) -> SMTP:
        return SMTP(
            handler,
            hostname="sink.localhost",
            tls_context=starttls,
            require_starttls=False,
            authenticator=authenticator,
            auth_require_tls=False,
            enable_SMTPUTF8=True,
        )

    loop = asyncio.get_running_loop()
    # Port 0: the kernel picks free ports, so concurrent sinks never race for one.
    plain = await loop.create_server(lambda: smtp(tls), "127.0.0.1", 0)
    smtps = await loop.create_server(lambda: smtp(None), "127.0.0.1", 0, ssl=tls)
    ports = {
        "port": plain.sockets[0].getsockname()[1],
        "smtps_port": smtps.sockets[0].getsockname()[1],
    }
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.replace(ready)  # atomic: the parent polls for this file

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    plain.close()
    smtps.close()


def main() -> None:
    """Parse the command line and run the sink."""
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--maildir", "--cert", "--key", "--users-file", "--ready-file"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    users: dict[str, str] = json.loads(Path(args.users_file).read_text())
    asyncio.run(serve(MaildirSink(Path(args.maildir)), users, tls, Path(args.ready_file)))


if __name__ == "__main__":
    main()
