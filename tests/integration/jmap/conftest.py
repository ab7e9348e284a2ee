"""The JMAP tests' servers: a private Cyrus serving JMAP for the session (users are created
per test) with an SMTP relay behind its EmailSubmission (see ``contract_server``)."""

from tests.integration.jmap.contract_server import cyrus, jmap_server, relay

__all__ = ["cyrus", "jmap_server", "relay"]
