"""The JMAP session document the sender's unit tests serve (RFC 8620 §2: one account for
mail and submission)."""

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
