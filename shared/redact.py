"""The secret redactor every log handler (and the CLI's --debug output) filters through.

Its own module, free of FastStream, so that code which only needs to register a secret (the
runtime of a CLI command) does not import the broker library with the logging setup.
"""

from __future__ import annotations

import logging
import threading

STANDARD_RECORD_KEYS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
"""The attributes every log record has; any other attribute is an extra."""


class SecretRedactor(logging.Filter):
    """Replaces every registered secret in a record's rendered message and extras with ***.

    Passwords and tokens are registered when the configuration is loaded, so even an
    exception text from a library that echoes a credential cannot leak it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, *secrets: str | None) -> None:
        """Add secrets to redact (short or empty values are ignored)."""
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= 3)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Render and redact the message in place (always keeps the record)."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redact(message), None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in STANDARD_RECORD_KEYS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


REDACTOR = SecretRedactor()

__all__ = ["REDACTOR", "STANDARD_RECORD_KEYS", "SecretRedactor"]
