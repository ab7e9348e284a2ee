"""Raw mail → :class:`ParsedMail`: robust MIME parsing, bounce and auto-reply classification.

``parse`` never raises anything but :class:`shared.errors.Permanent`, and only for input that
is not a mail; everything it had to repair is listed in ``ParsedMail.defects``.
"""

from services.processor.parsing._classify import is_auto_reply
from services.processor.parsing._model import BounceInfo, ParsedMail
from services.processor.parsing._parse import parse

__all__ = ["BounceInfo", "ParsedMail", "is_auto_reply", "parse"]
