"""Writes the mail corpus and its manifest: ``python -m tests.data.mail.generate``.

Each case is a raw mail and the outcome a person expects from it, written by hand here; the
parser is never asked. The other ``generate_*`` modules hold the cases of one theme each.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.data.mail import (
    generate_auto,
    generate_bounces,
    generate_clients,
    generate_files,
    generate_headers,
    generate_mime,
    generate_mta,
)
from tests.data.mail.corpus import CRLF, Expect, b64, encode, encoded_word, header_block, mail, qp

HERE = Path(__file__).parent
CASES: list[tuple[str, bytes, Expect]] = []

SAMPLES = {
    # charset: (subject, body) in a language that charset is used for
    "iso-8859-1": ("Grüße aus Köln", "Schöne Grüße, die Rechnung für März fehlt noch."),
    "iso-8859-15": ("Prix en €", "Le prix est de 15 € pour l'œuvre complète, merci."),
    "windows-1252": ("“Quoted” – dash", "Naïve café owners say “hello” – and mean it…"),
    "iso-8859-2": ("Zażółć gęślą jaźń", "Dzień dobry, proszę o pomoc z drukarką w biurze."),
    "windows-1250": ("Příliš žluťoučký kůň", "Dobrý den, tiskárna v kanceláři nefunguje správně."),
    "koi8-r": ("Проблема с принтером", "Здравствуйте, принтер в офисе не работает уже неделю."),
    "windows-1251": ("Вопрос по счёту", "Добрый день, пожалуйста, пришлите счёт за прошлый месяц."),
    "iso-8859-5": ("Заявка на ремонт", "Прошу отремонтировать кондиционер в комнате номер пять."),
    "iso-8859-7": (
        "Ερώτηση για λογαριασμό",
        "Καλημέρα, θα ήθελα να ρωτήσω για τον λογαριασμό μου.",
    ),
    "iso-8859-9": (
        "Fatura hakkında soru",
        "Merhaba, geçen ayın faturasını gönderir misiniz lütfen?",
    ),
    "shift_jis": ("プリンターの故障", "お世話になっております。プリンターが動きません。"),
    "iso-2022-jp": ("請求書について", "いつもお世話になっております。請求書を送ってください。"),
    "euc-jp": ("会議の日程", "来週の会議の日程を確認させてください。よろしくお願いします。"),
    "gb2312": ("打印机故障", "您好，办公室的打印机坏了，请尽快派人来修理。谢谢！"),
    "gbk": ("发票问题", "您好，请把上个月的发票寄给我们。谢谢您的帮助！"),
    "big5": ("印表機故障", "您好，辦公室的印表機壞了，請盡快派人來修理。謝謝！"),
    "euc-kr": ("프린터 고장", "안녕하세요, 사무실 프린터가 고장났습니다. 수리 부탁드립니다."),
    "utf-8": ("Ünïcödé ✓ 日本語", "Mixed scripts: Grüße, Привет, 你好, こんにちは ✓"),
    "windows-1254": (
        "Sipariş durumu",
        "Merhaba, siparişimin durumu hakkında bilgi alabilir miyim?",
    ),
    "windows-874": ("ปัญหาเครื่องพิมพ์", "สวัสดีครับ เครื่องพิมพ์ในสำนักงานเสียครับ"),
}


def add(name: str, raw: bytes, expect: Expect) -> None:
    """Register a case; the defaults hold for every field the case does not name."""
    full: Expect = {
        "from": ["alice@example.org"],
        "to": ["support@example.com"],
        "message_id": f"<{name}@example.org>",
        "classification": "normal",
        "attachments": [],
        "bounce": None,
    }
    full.update(expect)
    CASES.append((name, raw, full))


def charsets() -> None:
    """Every common charset, each in three transfer encodings, subject encoded in it."""
    for charset, (subject, text) in SAMPLES.items():
        data = encode(text, charset)
        for cte, body in (("8bit", data), ("quoted-printable", qp(data)), ("base64", b64(data))):
            if charset == "iso-2022-jp" and cte == "8bit":
                cte = "7bit"
            name = f"charset-{charset}-{cte}"
            kind = "Q" if cte == "quoted-printable" else "B"
            head = header_block(
                name,
                subject=encoded_word(subject, charset, kind),
                content_type=f"text/plain; charset={charset}".encode(),
                cte=cte.encode(),
            )
            add(name, mail(head, body + CRLF), {"subject": subject, "text": [text]})


def mislabelled() -> None:
    """Charsets that are wrong, missing or unknown: text kept, a defect recorded."""
    text = "Sehr geehrte Damen und Herren, die Lieferung für Köln ist noch nicht angekommen."
    cases = [
        ("cp1252-as-utf8", text.encode("cp1252"), b"utf-8", ["not valid utf-8"]),
        ("utf8-as-latin1", text.encode("utf-8"), b"iso-8859-1", ["declared iso-8859-1"]),
        ("utf8-unlabelled", text.encode("utf-8"), None, []),
        ("latin1-unlabelled", text.encode("cp1252"), None, ["no charset declared"]),
        ("unknown-charset", text.encode("utf-8"), b"x-unknown-42", ["unknown charset"]),
        ("bogus-quoted-charset", text.encode("utf-8"), b'"utf-8"', []),
        ("utf8-alias", text.encode("utf-8"), b"UTF8", []),
        ("ascii-with-8bit", text.encode("cp1252"), b"us-ascii", []),
    ]
    for name, data, label, defects in cases:
        ctype = b"text/plain" + (b"; charset=" + label if label else b"")
        head = header_block(f"mislabel-{name}", subject=b"Lieferung", content_type=ctype)
        expect: Expect = {"subject": "Lieferung", "text": [text], "defects": defects}
        add(f"mislabel-{name}", mail(head, data + CRLF), expect)
    russian = "Здравствуйте! Пожалуйста, пришлите нам договор и счёт до конца недели. Спасибо."
    head = header_block("mislabel-cp1251-as-utf8", subject=b"Dogovor", content_type=b"text/plain")
    head = head.replace(b"text/plain", b"text/plain; charset=utf-8")
    add(
        "mislabel-cp1251-as-utf8",
        mail(head, russian.encode("cp1251") + CRLF),
        {"subject": "Dogovor", "text": [russian], "defects": ["not valid utf-8"]},
    )
    undecodable = b"caf\xc3 \xff\xfe broken \x80 bytes"
    head = header_block("mislabel-undecodable", subject=b"Broken", content_type=b"text/plain")
    add(
        "mislabel-undecodable",
        mail(head, undecodable + CRLF),
        {"subject": "Broken", "text": ["broken", "bytes"], "defects": ["body plain"]},
    )


def build() -> dict[str, tuple[bytes, Expect]]:
    """Every case by file name: the raw mail and its expected outcome."""
    CASES.clear()
    charsets()
    mislabelled()
    for module in (
        generate_headers,
        generate_files,
        generate_mime,
        generate_clients,
        generate_bounces,
        generate_mta,
        generate_auto,
    ):
        for name, raw, expect in module.cases():
            add(name, raw, expect)
    return {f"{name}.eml": (raw, expect) for name, raw, expect in CASES}


def write() -> None:
    """Write the files and the manifest, replacing the old corpus."""
    cases = build()
    for old in HERE.glob("*.eml"):
        old.unlink()
    for filename, (raw, _) in cases.items():
        (HERE / filename).write_bytes(raw)
    manifest = {filename: expect for filename, (_, expect) in cases.items()}
    text = json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True)
    (HERE / "manifest.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
