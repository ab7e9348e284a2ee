"""The JMAP connection the sender's unit tests configure, and the session document they
serve (RFC 8620 §2: one account for mail and submission)."""

from shared.models.config import OutgoingConnection

JMAP = OutgoingConnection.model_validate(
    {
        "protocol": "jmap",
        "host": "jmap.example.org",
        "jmap_url": "https://jmap.example.org",
        "username": "helpdesk",
        "password": "secret",
    }
)

JMAP_SESSION: dict[str, object] = {
    "apiUrl": "/jmap/",
    "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
    "uploadUrl": "/jmap/upload/{accountId}/",
    "capabilities": {
        "urn:ietf:params:jmap:core": {},
        "urn:ietf:params:jmap:mail": {},
        "urn:ietf:params:jmap:submission": {},
    },
    "primaryAccounts": {
        "urn:ietf:params:jmap:mail": "A1",
        "urn:ietf:params:jmap:submission": "A1",
    },
}
