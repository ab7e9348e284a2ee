"""Corpus cases for attachments, TNEF and S/MIME (see ``generate.py``)."""

from __future__ import annotations

import binascii

from tests.data.mail.corpus import (
    PDF,
    PNG,
    Case,
    Expect,
    att,
    b64,
    header_block,
    mail,
    mixed,
    multipart,
    part,
    qp,
    signed_data,
    tnef,
)


def attachments() -> list[Case]:
    """File names in every encoding clients use, and odd transfer encodings."""
    cases: list[Case] = []
    names: list[tuple[str, bytes, str]] = [
        ("att-2231", b"attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf", "Rechnung März.pdf"),
        ("att-2231-lang", b"attachment; filename*=iso-8859-1'de'Pr%FCfung.pdf", "Prüfung.pdf"),
        (
            "att-2231-continued",
            b"attachment;\r\n filename*0*=UTF-8''%E6%97%A5%E6%9C%AC;\r\n filename*1*=%E8%AA%9E.pdf",
            "日本語.pdf",
        ),
        ("att-2047", b'attachment; filename="=?utf-8?B?0J7RgtGH0LXRgi5wZGY=?="', "Отчет.pdf"),
        ("att-raw-utf8", 'attachment; filename="Übersicht.pdf"'.encode(), "Übersicht.pdf"),
        (
            "att-2231-bad-charset",
            b"attachment; filename*=x-bogus''report%20final.pdf",
            "report final.pdf",
        ),
        ("att-plain", b'attachment; filename="invoice.pdf"', "invoice.pdf"),
        ("att-windows-path", b'attachment; filename="C:\\Users\\bob\\Report.pdf"', "Report.pdf"),
        ("att-unix-path", b'attachment; filename="../../etc/passwd.pdf"', "passwd.pdf"),
        # The lone byte is no UTF-8: read by detection (Windows-1252), not replaced.
        ("att-2231-bad-percent", b"attachment; filename*=utf-8''%E4%ZZbad.pdf", "ä%ZZbad.pdf"),
    ]
    for name, disposition, decoded in names:
        raw = mixed(
            name,
            b"Files",
            part(b"text/plain; charset=utf-8", b"see attached"),
            part(
                b"application/pdf", b64(PDF), b"Content-Disposition: " + disposition, cte=b"base64"
            ),
        )
        expect: Expect = {"subject": "Files", "text": ["see attached"]}
        expect["attachments"] = [att(decoded, "application/pdf", len(PDF))]
        cases.append((name, raw, expect))
    raw = mixed(
        "att-name-in-content-type",
        b"Files",
        part(b"text/plain", b"see attached"),
        part(b'image/png; name="=?utf-8?Q?Bild_=C3=A4.png?="', b64(PNG), cte=b"base64"),
    )
    expect = {"subject": "Files", "attachments": [att("Bild ä.png", "image/png", len(PNG))]}
    cases.append(("att-name-in-content-type", raw, expect))
    raw = mixed(
        "att-qp-text-file",
        b"Files",
        part(b"text/plain", b"body"),
        part(
            b"text/plain; charset=utf-8",
            qp("Zeile mit Ümlaut\n".encode()),
            b"Content-Disposition: attachment; filename=notes.txt",
            cte=b"quoted-printable",
        ),
    )
    size = len("Zeile mit Ümlaut\r\n".encode())
    cases.append(
        (
            "att-qp-text-file",
            raw,
            {
                "subject": "Files",
                "text": ["body"],
                "no_text": ["Ümlaut"],
                "attachments": [att("notes.txt", "text/plain", size)],
            },
        )
    )
    raw = mixed(
        "att-bad-base64",
        b"Files",
        part(b"text/plain", b"body"),
        part(
            b"application/octet-stream",
            b"SGVsbG8gV29ybGQ*!!\r\n",
            b"Content-Disposition: attachment; filename=data.bin",
            cte=b"base64",
        ),
    )
    cases.append(
        (
            "att-bad-base64",
            raw,
            {
                "subject": "Files",
                "attachments": [att("data.bin", "application/octet-stream", None)],
            },
        )
    )
    raw = mixed(
        "att-inline-cid",
        b"Logo",
        part(b"text/html; charset=utf-8", b'<p>Logo: <img src="cid:logo@x"></p>'),
        part(
            b"image/png",
            b64(PNG),
            b"Content-ID: <logo@x>",
            b"Content-Disposition: inline; filename=logo.png",
            cte=b"base64",
        ),
    )
    cases.append(
        (
            "att-inline-cid",
            raw,
            {
                "subject": "Logo",
                "html": ["cid:logo@x"],
                "text": ["Logo:"],
                "attachments": [att("logo.png", "image/png", len(PNG))],
                "content_ids": ["<logo@x>"],
            },
        )
    )
    uu = binascii.b2a_uu(b"hello uuencode world\n").decode()
    body = (
        "Please find the file below.\r\n\r\n"
        f"begin 644 hello.txt\r\n{uu.strip()}\r\n`\r\nend\r\n\r\nRegards\r\n"
    )
    head = header_block("att-uuencode", subject=b"uu", content_type=b"text/plain")
    cases.append(
        (
            "att-uuencode",
            mail(head, body.encode()),
            {
                "subject": "uu",
                "text": ["Please find the file below.", "Regards"],
                "no_text": ["begin 644"],
                "attachments": [att("hello.txt", "text/plain", 21)],
            },
        )
    )
    two = "".join(
        f"begin 600 {n}\r\n{binascii.b2a_uu(d).decode().strip()}\r\n`\r\nend\r\n"
        for n, d in (("a.pdf", PDF[:40]), ("b.bin", bytes(range(45))))
    )
    head = header_block("att-uuencode-two", subject=b"uu", content_type=b"text/plain")
    cases.append(
        (
            "att-uuencode-two",
            mail(head, b"Two files:\r\n" + two.encode()),
            {
                "subject": "uu",
                "text": ["Two files:"],
                "attachments": [
                    att("a.pdf", "application/pdf", 40),
                    att("b.bin", "application/octet-stream", 45),
                ],
            },
        )
    )
    return cases


def wrapped() -> list[Case]:
    """TNEF and S/MIME: content inside a container part."""
    cases: list[Case] = []
    blob = tnef([("report.pdf", PDF), ("photo.png", PNG)], b"Body inside TNEF")
    raw = mixed(
        "tnef-with-files",
        b"TNEF",
        part(b"text/plain", b"Outlook text"),
        part(
            b"application/ms-tnef; name=winmail.dat",
            b64(blob),
            b"Content-Disposition: attachment; filename=winmail.dat",
            cte=b"base64",
        ),
        extra=(b"X-MS-TNEF-Correlator: <00000000@example.org>",),
    )
    cases.append(
        (
            "tnef-with-files",
            raw,
            {
                "subject": "TNEF",
                "text": ["Outlook text"],
                "attachments": [
                    att("report.pdf", "application/pdf", len(PDF)),
                    att("photo.png", "image/png", len(PNG)),
                ],
            },
        )
    )
    blob = tnef([("notes.txt", b"tnef notes\n")], b"Only the TNEF body")
    head = header_block(
        "tnef-body-only", subject=b"TNEF body", content_type=b"application/ms-tnef", cte=b"base64"
    )
    cases.append(
        (
            "tnef-body-only",
            mail(head, b64(blob)),
            {
                "subject": "TNEF body",
                "text": ["Only the TNEF body"],
                "attachments": [att("notes.txt", "text/plain", 11)],
            },
        )
    )
    raw = mixed(
        "tnef-broken",
        b"Bad TNEF",
        part(b"text/plain", b"text"),
        part(
            b"application/ms-tnef",
            b64(b"not tnef at all"),
            b"Content-Disposition: attachment; filename=winmail.dat",
            cte=b"base64",
        ),
    )
    cases.append(
        (
            "tnef-broken",
            raw,
            {
                "subject": "Bad TNEF",
                "defects": ["winmail.dat"],
                "attachments": [att("winmail.dat", "application/ms-tnef", 15)],
            },
        )
    )
    content = part(b"text/plain; charset=utf-8", b"Signed content here.")
    sig = b"0\x82fake-signature-bytes"
    signed = multipart(
        b"s",
        content,
        part(
            b"application/pkcs7-signature; name=smime.p7s",
            b64(sig),
            b"Content-Disposition: attachment; filename=smime.p7s",
            cte=b"base64",
        ),
    )
    head = header_block(
        "smime-multipart-signed",
        subject=b"Signed",
        content_type=b'multipart/signed; protocol="application/pkcs7-signature"; '
        b"micalg=sha-256; boundary=s",
    )
    cases.append(
        (
            "smime-multipart-signed",
            mail(head, signed),
            {
                "subject": "Signed",
                "text": ["Signed content here."],
                "attachments": [att("smime.p7s", "application/pkcs7-signature", len(sig))],
            },
        )
    )
    der = signed_data(b"Content-Type: text/plain; charset=utf-8\r\n\r\nOpaque signed content.\r\n")
    head = header_block(
        "smime-opaque-signed",
        subject=b"Opaque",
        content_type=b'application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
        cte=b"base64",
    )
    cases.append(
        (
            "smime-opaque-signed",
            mail(head, b64(der)),
            {
                "subject": "Opaque",
                "text": ["Opaque signed content."],
                "attachments": [att("smime.p7m", "application/pkcs7-mime", len(der))],
            },
        )
    )
    head = header_block(
        "smime-encrypted",
        subject=b"Secret",
        content_type=b'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        cte=b"base64",
    )
    cases.append(
        (
            "smime-encrypted",
            mail(head, b64(b"0\x80encrypted")),
            {
                "subject": "Secret",
                "defects": ["encrypted"],
                "attachments": [att("smime.p7m", "application/pkcs7-mime", 11)],
            },
        )
    )
    pgp = multipart(
        b"p",
        part(b"text/plain", b"PGP signed text"),
        part(
            b"application/pgp-signature; name=signature.asc",
            b"-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----",
            b"Content-Disposition: attachment; filename=signature.asc",
        ),
    )
    head = header_block(
        "pgp-signed",
        subject=b"PGP",
        content_type=b'multipart/signed; protocol="application/pgp-signature"; boundary=p',
    )
    cases.append(
        (
            "pgp-signed",
            mail(head, pgp),
            {
                "subject": "PGP",
                "text": ["PGP signed text"],
                "attachments": [att("signature.asc", "application/pgp-signature", None)],
            },
        )
    )
    return cases


def cases() -> list[Case]:
    """Every case of this module."""
    return attachments() + wrapped()
