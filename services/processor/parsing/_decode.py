"""Bytes and header values → text, whatever the mail claims its charset is.

Labels are mapped to the superset codecs mail clients really use (WHATWG does the same for
the web); a label that is unknown or wrong falls back to ``charset-normalizer``'s guess and, when
nothing fits, to UTF-8 with replacement characters. A single-byte label decodes any bytes, so a
wrong one shows as gibberish rather than an error: text that reads as gibberish under its label
(``charset-normalizer``'s mess ratio) is decoded with the common single-byte charset under which
it reads cleanly. Every fallback is reported as a defect so
that the operator can see the text was repaired; the raw bytes stay stored unchanged.
"""

from __future__ import annotations

import codecs
import email.header
import email.quoprimime
import re

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

# Labels whose real-world content is a superset codec: decoding with the superset loses nothing.
_SUPERSETS = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_ext",
    "x-mac-roman": "mac-roman",
    "utf8": "utf-8",
}
# Single-byte labels under which senders often put UTF-8 (clients that label by locale).
_OFTEN_MISLABELLED = {"cp1252", "cp1250", "cp1254", "iso8859-15", "iso8859-2"}
# Python text codecs that are no MIME charset: a label naming one is junk, not an encoding.
_PYTHON_ONLY = {"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined"}
# Detection reads a sample: the whole of a large part adds time, not accuracy.
_DETECT_SAMPLE = 64 * 1024
# Where a wrong single-byte label is looked for, and what the text may really be: the charsets
# mail is most often written in, most used first (a tie goes to the first).
_SINGLE_BYTE_CANDIDATES = (
    "cp1252", "cp1251", "koi8-r", "cp1250", "iso8859-2", "cp1253", "cp1254", "cp1257",
    "cp1255", "cp1256",
)  # fmt: skip
_SINGLE_BYTE = {
    *_SINGLE_BYTE_CANDIDATES, "koi8-u", "iso8859-5", "iso8859-7", "iso8859-13", "iso8859-15",
    "iso8859-4", "iso8859-10", "cp866", "mac-roman",
}  # fmt: skip
# Mess ratio from which a text reads as gibberish ("оПХБЕР, ЙЮЙ ДЕКЮ?" scores 0.14, correctly
# labelled Russian or German text below 0.11), and by how much another reading must beat it.
_GIBBERISH = 0.1
_CLEARER = 2
_MIN_LETTERS = 8
_MESS_SAMPLE = 4096
_HIGH_PAIR = re.compile(rb"[\x80-\xff]{2}")
# The payload may hold spaces: a common non-conforming sender writes "=?utf-8?Q?a b?=".
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*?\?=")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)")
_SPACE_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")


def codec_for(label: str | None) -> str | None:
    """The Python codec to use for a MIME charset label, or None when it is unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _SUPERSETS.get(name, name)
    try:
        codec = codecs.lookup(name).name
        "".encode(codec)  # refuses bytes-to-bytes codecs such as "base64" or "zlib"
    except (LookupError, ValueError):  # ValueError: labels with NUL or other junk
        return None
    return None if codec in _PYTHON_ONLY else codec


def decode_bytes(data: bytes, label: str | None, what: str, defects: list[str]) -> str:
    """Decode ``data`` declared as ``label``; on a bad label guess, and never raise."""
    codec = codec_for(label)
    if not data.isascii() and codec in _OFTEN_MISLABELLED and _is_utf8(data):
        defects.append(f"{what}: declared {label} but is UTF-8")
        return data.decode("utf-8")
    if codec is not None:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, ValueError):
            pass
        else:
            if codec in _SINGLE_BYTE and not data.isascii():
                return _relabelled(data, text, codec, label, what, defects)
            return text
    elif _is_utf8(data):
        # Without a usable label, ASCII and UTF-8 are by far the most likely and decode exactly.
        if label:
            defects.append(f"{what}: unknown charset {label!r}, decoded as utf-8")
        return data.decode("utf-8")
    guess = "cp1252" if _sparse_8bit(data) else _guess(data)
    text = data.decode(guess or "utf-8", errors="replace")
    if not label:
        reason = "no charset declared"
    else:
        reason = f"unknown charset {label!r}" if codec is None else f"not valid {label}"
    defects.append(f"{what}: {reason}, decoded as {guess or 'utf-8 with replacement'}")
    return text


def _relabelled(
    data: bytes, text: str, codec: str, label: str | None, what: str, defects: list[str]
) -> str:
    """``text`` (``data`` decoded as its single-byte label), or ``data`` decoded with the
    charset it reads cleanly in when it reads as gibberish under its label."""
    sample = text[:_MESS_SAMPLE]
    letters = [c for c in sample if c.isalpha()]
    foreign = sum(not c.isascii() for c in letters)
    # Only text written mostly in non-Latin letters is read again: in a Latin-script text the
    # few accented letters are too little evidence (the mess ratio of short runs of symbols
    # or capitals is high even when they are right).
    if foreign < _MIN_LETTERS or 2 * foreign <= len(letters):
        return text
    mess = mess_ratio(sample, maximum_threshold=1.0)
    if mess < _GIBBERISH:
        return text
    best: tuple[float, str, str] | None = None
    for candidate in _SINGLE_BYTE_CANDIDATES:
        if candidate == codec:
            continue
        try:
            other = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        score = mess_ratio(other[:_MESS_SAMPLE], maximum_threshold=1.0)
        if best is None or score < best[0]:
            best = (score, candidate, other)
    if best is None or best[0] * _CLEARER > mess:
        return text
    defects.append(f"{what}: declared {label} but reads as {best[1]}")
    return best[2]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sparse_8bit(data: bytes) -> bool:
    # Western text: ASCII with a few accented letters, never two 8-bit bytes in a row. Detectors
    # read such short runs as CJK double-byte text; Windows-1252 is what senders meant.
    return _HIGH_PAIR.search(data) is None


def _guess(data: bytes) -> str | None:
    try:
        best = from_bytes(data[:_DETECT_SAMPLE]).best()
    except Exception:  # a detector bug must not cost us the mail; we fall back to UTF-8
        return None
    return None if best is None else codec_for(best.encoding)


def header_text(raw: str, what: str, defects: list[str], charset: str | None = None) -> str:
    """Decode a raw header value: RFC 2047 words, raw 8-bit bytes (``charset``: see
    :func:`unescape_8bit`), folding."""
    # Unfold (RFC 5322 2.2.3): a fold's line break goes, its whitespace stays.
    value = unescape_8bit(_LINE_BREAK.sub("", raw), what, defects, charset)
    if "=?" in value:
        value = _decode_words(value, what, defects)
    # Whitespace inside the value is the sender's (file names keep theirs).
    return value.strip()


def unescape_8bit(raw: str, what: str, defects: list[str], charset: str | None = None) -> str:
    """Header text with raw 8-bit bytes (kept by the parser as surrogate escapes) decoded.

    ``charset``: the one the mail declares for its text. Raw 8-bit header text that is not
    UTF-8 is written in it far more often than in anything a detector can guess from a few
    bytes (mail clients read it so too).
    """
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        data = raw.encode("utf-8", errors="surrogateescape")
        if charset is not None and codec_for(charset) is not None and not _is_utf8(data):
            defects.append(f"{what}: raw 8-bit text read in the mail's charset {charset}")
            return decode_bytes(data, charset, what, defects)
        return decode_bytes(data, None, what, defects)
    return raw


def _decode_words(value: str, what: str, defects: list[str]) -> str:
    # Clients split words mid-character and put whitespace between them; RFC 2047 says that
    # whitespace between adjacent encoded words is not part of the text.
    value = _SPACE_BETWEEN_WORDS.sub(r"\1\2", value)
    out: list[str] = []
    pos = 0
    pending: list[tuple[bytes, str]] = []
    for found in _ENCODED_WORD.finditer(value):
        if found.start() > pos:
            out.append(_flush(pending, what, defects))
            out.append(value[pos : found.start()])
        pending.extend(_word(found.group(0), what, defects))
        pos = found.end()
    out.append(_flush(pending, what, defects))
    out.append(value[pos:])
    return "".join(out)


def _word(word: str, what: str, defects: list[str]) -> list[tuple[bytes, str]]:
    payload = word.split("?")[3]
    if not payload.isascii() and word.split("?")[2] in "qQ":
        return _word_with_8bit(word, what, defects)
    if " " in payload:
        # Spaces are not allowed in a word (RFC 2047 5): in Q they meant spaces, in B nothing.
        keep = "" if word.split("?")[2] in "bB" else "_"
        word = word.replace(payload, payload.replace(" ", keep))
        payload = payload.replace(" ", keep)
    if word.split("?")[2] in "bB" and not _BASE64.fullmatch(payload):
        defects.append(f"{what}: undecodable encoded word {word[:60]!r}")
        return [(word.encode("utf-8", errors="surrogateescape"), "utf-8")]
    try:
        return [(d, c or "") for d, c in email.header.decode_header(word) if isinstance(d, bytes)]
    except Exception:  # bad base64 or quoted-printable inside a word: keep the word as written
        defects.append(f"{what}: undecodable encoded word {word[:60]!r}")
        return [(word.encode("utf-8", errors="surrogateescape"), "utf-8")]


def _word_with_8bit(word: str, what: str, defects: list[str]) -> list[tuple[bytes, str]]:
    # Some senders put raw 8-bit text inside a Q word ("=?utf-8?Q?Привет?="). The header's
    # 8-bit bytes are already text here (unescape_8bit), which the stdlib would turn into
    # "\\u041f" escapes: keep those characters as they are and decode only the ASCII around them.
    defects.append(f"{what}: 8-bit text inside an encoded word")
    _, charset, _, payload, _ = word.split("?")
    found: list[tuple[bytes, str]] = []
    for run in _NON_ASCII_RUN.split(payload.replace(" ", "_")):
        if not run:
            continue
        if run.isascii():
            found.append((email.quoprimime.header_decode(run).encode("latin-1"), charset))
        else:
            found.append((run.encode("utf-8"), "utf-8"))
    return found


def _flush(pending: list[tuple[bytes, str]], what: str, defects: list[str]) -> str:
    # Adjacent words in one charset are joined before decoding: a multi-byte character may be
    # split across two words.
    text: list[str] = []
    while pending:
        data, charset = pending.pop(0)
        while pending and pending[0][1] == charset:
            data += pending.pop(0)[0]
        text.append(decode_bytes(data, charset.split("*")[0] or None, what, defects))
    return "".join(text)
