"""Corpus cases in the shapes real clients send (see ``generate.py``)."""

from __future__ import annotations

from tests.data.mail.corpus import (
    PDF,
    Case,
    att,
    b64,
    header_block,
    mail,
    mixed,
    multipart,
    part,
    qp,
)


def clients() -> list[Case]:
    """The shapes real clients send."""
    cases: list[Case] = []
    text = "Hallo Support-Team,\n\ndas Gerät startet nicht – bitte um Rückruf.\n\nGrüße\n".encode(
        "cp1252"
    )
    html = (
        '<html><body><p class="MsoNormal">das Gerät startet nicht – bitte</p></body></html>'.encode(
            "cp1252"
        )
    )
    outlook = multipart(
        b"_000_",
        part(b'text/plain; charset="Windows-1252"', qp(text), cte=b"quoted-printable"),
        part(b'text/html; charset="Windows-1252"', qp(html), cte=b"quoted-printable"),
    )
    head = header_block(
        "client-outlook",
        subject=b"AW: =?Windows-1252?Q?Ger=E4t_defekt?=",
        sender=b'"Meier, Anna" <anna.meier@example.de>',
        content_type=b'multipart/alternative; boundary="_000_"',
        extra=(
            b"Thread-Index: AdkAbCdEfGh==",
            b"X-MS-Has-Attach:",
            b"In-Reply-To: <ack-17@example.com>",
            b"Cc: Chef <chef@example.de>",
        ),
    )
    cases.append(
        (
            "client-outlook",
            mail(head, outlook),
            {
                "subject": "AW: Gerät defekt",
                "from": ["anna.meier@example.de"],
                "from_names": ["Meier, Anna"],
                "cc": ["chef@example.de"],
                "in_reply_to": "<ack-17@example.com>",
                "text": ["das Gerät startet nicht – bitte um Rückruf."],
                "html": ["MsoNormal"],
            },
        )
    )
    gmail = multipart(
        b"000000000000abc",
        part(
            b'text/plain; charset="UTF-8"',
            b"Thanks!\r\n\r\nOn Mon, Nov 23, 2026 Support wrote:\r\n> Your case [Case#10001]\r\n",
        ),
        part(
            b'text/html; charset="UTF-8"',
            b'<div dir="ltr">Thanks!</div><div class="gmail_quote">quoted</div>',
        ),
    )
    head = header_block(
        "client-gmail",
        subject=b"Re: Your case [Case#10001]",
        sender=b"Bob <bob@gmail.example>",
        content_type=b'multipart/alternative; boundary="000000000000abc"',
        extra=(b"References: <ack-1@example.com>", b"In-Reply-To: <ack-1@example.com>"),
    )
    cases.append(
        (
            "client-gmail",
            mail(head, gmail),
            {
                "subject": "Re: Your case [Case#10001]",
                "from": ["bob@gmail.example"],
                "references": ["<ack-1@example.com>"],
                "in_reply_to": "<ack-1@example.com>",
                "text": ["Thanks!", "> Your case"],
                "html": ["gmail_quote"],
            },
        )
    )
    apple = multipart(
        b"Apple-Mail=_1",
        part(
            b"text/plain; charset=utf-8", qp("Bitte prüfen 👍\n".encode()), cte=b"quoted-printable"
        ),
        part(
            b"text/html; charset=utf-8",
            qp("<html><body>Bitte prüfen 👍</body></html>".encode()),
            cte=b"quoted-printable",
        ),
    )
    head = header_block(
        "client-apple",
        subject=b"=?utf-8?Q?Pr=C3=BCfung?=",
        content_type=b'multipart/alternative; boundary="Apple-Mail=_1"',
        extra=(b"X-Mailer: Apple Mail (2.3731.700.6)",),
    )
    cases.append(
        (
            "client-apple",
            mail(head, apple),
            {"subject": "Prüfung", "text": ["Bitte prüfen 👍"], "html": ["prüfen"]},
        )
    )
    tb = mixed(
        "client-thunderbird",
        b"Report",
        part(
            b"text/plain; charset=UTF-8; format=flowed",
            b"Here is the report \r\nyou asked for.\r\n",
            cte=b"7bit",
        ),
        part(
            b'application/pdf; name="report.pdf"',
            b64(PDF),
            b'Content-Disposition: attachment; filename="report.pdf"',
            cte=b"base64",
        ),
        extra=(b"User-Agent: Mozilla Thunderbird",),
    )
    cases.append(
        (
            "client-thunderbird",
            tb,
            {
                "subject": "Report",
                "text": ["Here is the report"],
                "attachments": [att("report.pdf", "application/pdf", len(PDF))],
            },
        )
    )
    body = b64("Von meinem iPhone gesendet: Ölwechsel nötig.".encode())
    head = header_block(
        "client-iphone",
        subject=b"=?utf-8?B?w5Zs?=",
        content_type=b"text/plain; charset=utf-8",
        cte=b"base64",
    )
    cases.append(
        ("client-iphone", mail(head, body), {"subject": "Öl", "text": ["Ölwechsel nötig."]})
    )
    jp = "お問い合わせありがとうございます。".encode("iso-2022-jp")
    head = header_block(
        "client-japanese-mua",
        subject=b"=?ISO-2022-JP?B?GyRCJF4kaiQ3JEYbKEI=?=",
        content_type=b"text/plain; charset=ISO-2022-JP",
        cte=b"7bit",
    )
    cases.append(
        (
            "client-japanese-mua",
            mail(head, jp),
            {"subject": "まりして", "text": ["お問い合わせありがとうございます。"]},
        )
    )
    return cases


def cases() -> list[Case]:
    """Every case of this module."""
    return clients()
