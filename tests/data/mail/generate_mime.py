"""Corpus cases for MIME structure (see ``generate.py``)."""

from __future__ import annotations

from tests.data.mail.corpus import (
    CRLF,
    Case,
    att,
    b64,
    header_block,
    mail,
    mixed,
    multipart,
    part,
)


def structure() -> list[Case]:
    """Broken boundaries, nesting, alternatives, forwarded mail, HTML only."""
    cases: list[Case] = []
    alt = multipart(
        b"alt",
        part(b"text/plain; charset=utf-8", b"Plain version"),
        part(b"text/html; charset=utf-8", b"<html><body><p>HTML <b>version</b></p></body></html>"),
    )
    head = header_block(
        "mime-alternative", subject=b"Alt", content_type=b"multipart/alternative; boundary=alt"
    )
    cases.append(
        (
            "mime-alternative",
            mail(head, alt),
            {
                "subject": "Alt",
                "text": ["Plain version"],
                "no_text": ["HTML"],
                "html": ["<b>version</b>"],
            },
        )
    )
    head = header_block("mime-html-only", subject=b"HTML", content_type=b"text/html; charset=utf-8")
    html = (
        b"<html><head><style>p{color:red}</style></head><body><h1>Title</h1>"
        b"<p>First &amp; second</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    cases.append(
        (
            "mime-html-only",
            mail(head, html),
            {
                "subject": "HTML",
                "text": ["Title", "First & second", "one", "two"],
                "no_text": ["color:red", "<p>"],
                "html": ["<h1>Title</h1>"],
            },
        )
    )
    head = header_block("mime-no-boundary", subject=b"NB", content_type=b"multipart/mixed")
    cases.append(
        (
            "mime-no-boundary",
            mail(head, b"--x\r\nContent-Type: text/plain\r\n\r\nlost boundary text\r\n--x--\r\n"),
            {
                "subject": "NB",
                "text": ["lost boundary text"],
                "defects": ["without a usable boundary"],
            },
        )
    )
    head = header_block(
        "mime-wrong-boundary", subject=b"WB", content_type=b"multipart/mixed; boundary=nothere"
    )
    cases.append(
        (
            "mime-wrong-boundary",
            mail(head, b"--other\r\nContent-Type: text/plain\r\n\r\nmismatched\r\n--other--\r\n"),
            {"subject": "WB", "defects": ["StartBoundaryNotFoundDefect"]},
        )
    )
    head = header_block("mime-unclosed", subject=b"UC", content_type=b"multipart/mixed; boundary=b")
    cases.append(
        (
            "mime-unclosed",
            mail(head, b"--b\r\nContent-Type: text/plain\r\n\r\nnever closed\r\n"),
            {"subject": "UC", "text": ["never closed"], "defects": ["CloseBoundaryNotFoundDefect"]},
        )
    )
    head = header_block(
        "mime-preamble", subject=b"Pre", content_type=b"multipart/mixed; boundary=b"
    )
    body = multipart(
        b"b",
        part(b"text/plain", b"real body"),
        preamble=b"This is a multi-part message in MIME format.\r\n",
    )
    cases.append(
        (
            "mime-preamble",
            mail(head, body + b"epilogue junk\r\n"),
            {"subject": "Pre", "text": ["real body"], "no_text": ["multi-part message"]},
        )
    )
    inner = (
        header_block("inner", subject=b"Original question", sender=b"bob@example.net")
        + CRLF
        + CRLF
        + b"Inner text that must not merge."
        + CRLF
    )
    inner = inner.replace(b"\r\n", b"\r\n")
    raw = mixed(
        "mime-forward-rfc822",
        b"Fwd: Original question",
        part(b"text/plain", b"See the forwarded mail."),
        part(b"message/rfc822", inner, b"Content-Disposition: attachment"),
    )
    cases.append(
        (
            "mime-forward-rfc822",
            raw,
            {
                "subject": "Fwd: Original question",
                "text": ["See the forwarded mail."],
                "no_text": ["Inner text"],
                "attachments": [att("Original question.eml", "message/rfc822", len(inner))],
            },
        )
    )
    raw = mixed(
        "mime-forward-named",
        b"Fwd",
        part(b"text/plain", b"fw"),
        part(b"message/rfc822", inner, b'Content-Disposition: attachment; filename="orig.eml"'),
    )
    cases.append(
        (
            "mime-forward-named",
            raw,
            {"subject": "Fwd", "attachments": [att("orig.eml", "message/rfc822", len(inner))]},
        )
    )
    outer = mixed(
        "mime-rfc822-nested-inner",
        b"Inner forward",
        part(b"text/plain", b"middle"),
        part(b"message/rfc822", inner),
    )
    raw = mixed(
        "mime-rfc822-nested",
        b"Twice",
        part(b"text/plain", b"outer text"),
        part(b"message/rfc822", outer),
    )
    cases.append(
        (
            "mime-rfc822-nested",
            raw,
            {
                "subject": "Twice",
                "text": ["outer text"],
                "no_text": ["middle", "Inner text"],
                "attachments": [att("Inner forward.eml", "message/rfc822", None)],
            },
        )
    )
    depth = 40
    body = b""
    for i in range(depth):
        body += b"--d%d\r\nContent-Type: multipart/mixed; boundary=d%d\r\n\r\n" % (i, i + 1)
    body += b"--d%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth
    head = header_block(
        "mime-deep-nesting", subject=b"Deep", content_type=b"multipart/mixed; boundary=d0"
    )
    cases.append(
        (
            "mime-deep-nesting",
            mail(head, body),
            {"subject": "Deep", "defects": ["nested deeper than"]},
        )
    )
    many = multipart(
        b"m",
        *[
            part(
                b"application/octet-stream",
                b"x",
                b"Content-Disposition: attachment; filename=f%d" % i,
            )
            for i in range(1100)
        ],
    )
    head = header_block(
        "mime-many-parts", subject=b"Many", content_type=b"multipart/mixed; boundary=m"
    )
    cases.append(
        (
            "mime-many-parts",
            mail(head, many),
            {"subject": "Many", "attachment_count": 999, "defects": ["more than 1000 MIME parts"]},
        )
    )
    apple = mixed(
        "mime-apple-split",
        b"Photos",
        part(b"text/plain; charset=us-ascii", b"Before the picture."),
        part(
            b"image/jpeg; name=IMG_0001.jpeg",
            b64(b"\xff\xd8\xff" + b"j" * 500),
            b"Content-Disposition: inline; filename=IMG_0001.jpeg",
            cte=b"base64",
        ),
        part(b"text/plain; charset=us-ascii", b"After the picture."),
        extra=(b"X-Mailer: Apple Mail (2.3654)",),
    )
    cases.append(
        (
            "mime-apple-split",
            apple,
            {
                "subject": "Photos",
                "text": ["Before the picture.", "After the picture."],
                "attachments": [att("IMG_0001.jpeg", "image/jpeg", 503)],
            },
        )
    )
    head = header_block("mime-empty-body", subject=b"Empty", content_type=b"text/plain")
    cases.append(("mime-empty-body", head + CRLF + CRLF, {"subject": "Empty", "text": [""]}))
    head = header_block(
        "mime-related", subject=b"Rel", content_type=b"multipart/alternative; boundary=a"
    )
    related = multipart(
        b"r",
        part(b"text/html", b'<p>Hi <img src="cid:i1"></p>'),
        part(b"image/gif", b64(b"GIF89a" + b"\0" * 30), b"Content-ID: <i1>", cte=b"base64"),
    )
    body = multipart(
        b"a", part(b"text/plain", b"Hi"), part(b"multipart/related; boundary=r", related)
    )
    cases.append(
        (
            "mime-related",
            mail(head, body),
            {
                "subject": "Rel",
                "text": ["Hi"],
                "html": ["cid:i1"],
                "attachments": [att(None, "image/gif", 36)],
            },
        )
    )
    return cases


def cases() -> list[Case]:
    """Every case of this module."""
    return structure()
