"""Conversation ids: ``{CMI: 00000042}``-style tokens that tie a mail thread to a case.

The sender writes one into the subject or body of mail for a case; the processor finds it in
replies, where it survives subject rewrites that break the subject pattern. The system
identifier keeps two systems that answer each other from claiming each other's tokens.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,15}$")


class ConversationSettings(BaseModel):
    """Field module ``conversation``: whether and how conversation ids are used."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = False
    """Give every case a conversation id that replies carry back."""
    system_identifier: str = "CMI"
    """Names this system in the conversation token (2-16 letters or digits)."""
    placement: Literal["subject", "body"] = "subject"
    """Where the conversation token goes in outgoing mail."""
    number_format: str = Field(default="{number:08d}", max_length=40)
    """Python format of the conversation number, using ``{number}``."""

    @field_validator("system_identifier")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(
                "system identifier must be 2-16 letters or digits, starting with a letter"
            )
        return value

    @field_validator("number_format")
    @classmethod
    def _format(cls, value: str) -> str:
        try:
            rendered = value.format(number=42)
        except Exception as exc:  # {number.x}: AttributeError; any failure is the format's
            raise ValueError(
                f"number format must use {{number}}, e.g. {{number:08d}}: {exc}"
            ) from exc
        if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", rendered):
            raise ValueError(
                f"number format renders {rendered!r}; use letters, digits and '-' only"
            )
        return value


def conversation_reference(settings: ConversationSettings, number: int) -> str:
    """The reference of conversation ``number`` in the configured format, e.g. ``00000042``."""
    return settings.number_format.format(number=number)


def conversation_token(settings: ConversationSettings, reference: str) -> str:
    """The token that carries ``reference`` in a mail, e.g. ``{CMI: 00000042}``."""
    return f"{{{settings.system_identifier}: {reference}}}"


def find_conversation_id(settings: ConversationSettings, text: str) -> str | None:
    """The conversation reference (the part after the identifier) found in ``text``."""
    pattern = rf"\{{\s*{re.escape(settings.system_identifier)}\s*:\s*([A-Za-z0-9-]{{1,32}})\s*\}}"
    match = re.search(pattern, text)
    return match.group(1) if match else None
