"""Repair a broken header block before the stdlib parser reads it, so no header is lost.

The stdlib parser ends the header block at the first line that is neither a field nor a
continuation, and reads everything after it as body: one junk first line (an mbox ``From ``
line written with a ``>``, a stray line from an export tool) or one fold without its leading
whitespace loses every header after it. Here such a line is repaired when a header field
follows within a few lines (a junk first line is removed, a broken fold is joined to the field
before it), ``Name  :`` (whitespace before the colon, RFC 5322 obsolete syntax) becomes
``Name:``, and each repair is recorded as a defect. A non-field line that no field follows is
where the body starts (a mail without the blank line), as the stdlib parser reads it.
"""

from __future__ import annotations

import re

# A field name (printable ASCII but ":") and the colon, obsolete whitespace allowed between.
_FIELD = re.compile(rb"([!-9;-~]+)([ \t]+)?:")
_MBOX_FROM = re.compile(rb">*From \S")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
# How far a repaired line may be from the next field: farther, it is the body.
_LOOKAHEAD = 3


def recover_head(data: bytes, defects: list[str]) -> bytes:
    """``data`` with its header block repaired (the same object when nothing needed it)."""
    end = _END_OF_HEAD.search(data)
    head_end = end.start() if end else len(data)
    lines = data[:head_end].splitlines(keepends=True)
    out: list[bytes] = []
    changed = False
    for index, line in enumerate(lines):
        repaired = _repair(lines, index, line, bool(out), defects)
        if repaired is None:  # the body starts here
            out.extend(lines[index:])
            break
        changed = changed or repaired != line
        out.append(repaired)
    if not changed:
        return data
    return b"".join(out) + data[head_end:]


def _repair(
    lines: list[bytes], index: int, line: bytes, seen_field: bool, defects: list[str]
) -> bytes | None:
    """The line as the parser should see it: b"" to drop it, None when the body starts."""
    if line[:1] in (b" ", b"\t") and seen_field:
        return line
    field = _FIELD.match(line)
    if field:
        if field.group(2) is None:
            return line
        name = field.group(1).decode("ascii")
        defects.append(f"{name}: whitespace before the colon removed")
        return field.group(1) + b":" + line[field.end() :]
    if index == 0 and line.startswith(b"From "):
        # An mbox envelope line: the stdlib parser keeps it apart (the unixfrom), no header is
        # lost, but the operator should see the mail was cut from a mailbox file.
        defects.append(f"mbox From line before the headers set apart: {_show(line)}")
        return line
    if not any(_FIELD.match(after) for after in lines[index + 1 : index + 1 + _LOOKAHEAD]):
        return None
    if not seen_field:
        what = "mbox From line" if _MBOX_FROM.match(line) else "junk line"
        defects.append(f"{what} before the headers removed: {_show(line)}")
        return b""
    defects.append(f"broken fold joined to the header before it: {_show(line)}")
    return b" " + line


def _show(line: bytes) -> str:
    return repr(line.rstrip(b"\r\n")[:60].decode("utf-8", errors="replace"))
