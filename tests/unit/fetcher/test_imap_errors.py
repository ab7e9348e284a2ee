"""How the IMAP adapter translates failures: Transient or Permanent, never the password."""

from __future__ import annotations

import ssl

import aioimaplib
import pytest

from shared.errors import Permanent, Transient
from shared.mailbox._imap_parse import ImapProtocolError
from shared.mailbox._imap_session import ConnectionLost, Session, translate

SECRET = 'se"cr\\et-pw'
WHERE = "imap.example.org:993"


def session() -> Session:
    return Session(client=None, where=WHERE, timeout=3.0, secret=SECRET)


def cert_failure() -> Exception:
    cause = ssl.SSLCertVerificationError("certificate verify failed")
    cause.verify_message = "self-signed certificate"
    outer = ConnectionError("handshake failed")
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (cert_failure(), Permanent, "is not trusted: self-signed certificate; set ca_file"),
        (ConnectionLost(), Transient, "closed the connection during LOGIN"),
        (TimeoutError(), Transient, "did not answer LOGIN within 3 s"),
        (ImapProtocolError("FETCH sent no UID"), Transient, "answered LOGIN wrongly"),
        (ssl.SSLError(1, "WRONG_VERSION_NUMBER"), Transient, "TLS with IMAP server"),
        (ConnectionRefusedError(111, "Connect call failed"), Transient, "unreachable"),
        (ValueError("NUL, CR and LF are not allowed"), Permanent, "cannot send LOGIN"),
    ],
)
def test_failures_map_onto_the_error_tree(exc: Exception, kind: type, text: str) -> None:
    error = translate(exc, where=WHERE, what="LOGIN", timeout=3.0)
    assert type(error) is kind
    assert text in str(error) and WHERE in str(error)


def test_a_bug_is_not_disguised_as_a_server_failure() -> None:
    assert translate(RuntimeError("bug"), where=WHERE, what="LOGIN", timeout=3.0) is None
    with pytest.raises(RuntimeError), session().translated("LOGIN"):
        raise RuntimeError("bug")


@pytest.mark.parametrize(
    ("result", "text", "permanent", "kind"),
    [
        ("NO", b"[AUTHENTICATIONFAILED] Authentication failed.", True, Permanent),
        ("NO", b"[UNAVAILABLE] Temporary authentication failure.", True, Transient),
        ("BAD", b"Error in IMAP command", True, Permanent),
        ("NO", b"[SERVERBUG] Internal error", False, Transient),
        ("NO", b"Mailbox is read-only", False, Transient),
    ],
)
def test_refusals_are_permanent_only_when_they_will_last(
    result: str, text: bytes, permanent: bool, kind: type
) -> None:
    response = aioimaplib.Response(result, [text])
    with pytest.raises(kind) as caught:
        session().check(response, "LOGIN", refused="login refused for a@h", permanent=permanent)
    assert str(caught.value) == f"login refused for a@h: {result} {text.decode()}"


def test_ok_passes_and_a_default_refusal_names_the_command() -> None:
    session().check(aioimaplib.Response("OK", [b"done"]), "UID STORE")
    with pytest.raises(Transient, match=f"IMAP server {WHERE} refused UID STORE: NO nope"):
        session().check(aioimaplib.Response("NO", [b"nope"]), "UID STORE")


def test_the_password_never_survives_in_texts_or_causes() -> None:
    s = session()
    echoed = aioimaplib.Response("NO", [f"bad password {SECRET}".encode()])
    with pytest.raises(Permanent) as refused:
        s.check(echoed, "LOGIN", permanent=True)
    assert SECRET not in str(refused.value) and "***" in str(refused.value)

    # aioimaplib's texts may quote the pending LOGIN command with its (quoted) argument.
    quoted = '"' + SECRET.replace("\\", "\\\\").replace('"', '\\"') + '"'
    with pytest.raises(Transient) as protocol_error, s.translated("LOGIN"):
        raise aioimaplib.Abort(f"unexpected tagged response with pending LOGIN alice {quoted}")
    assert SECRET not in str(protocol_error.value) and quoted not in str(protocol_error.value)
    assert protocol_error.value.__cause__ is None and protocol_error.value.__suppress_context__
    assert s.lost.is_set()  # a session in an unknown state is never used again


def test_a_command_timeout_of_aioimaplib_reads_as_a_timeout() -> None:
    timeout = pytest.raises(Transient, match="did not answer UID FETCH within 3 s")
    with timeout, session().translated("UID FETCH"):
        raise aioimaplib.CommandTimeout(None)
