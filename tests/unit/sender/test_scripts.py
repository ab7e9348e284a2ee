"""Outgoing-mail scripts: order and enablement by property, changing and stopping a mail,
and the checks on what a script hands back."""

from __future__ import annotations

from typing import Any

import pytest

from services.sender.scripts import OutgoingContext, Script, StopMail, Stopped, run_scripts
from services.sender.scripts import load_script as installed
from shared.errors import Permanent
from shared.models.config import SystemConfig
from shared.models.messages import OutgoingMail
from shared.models.outgoing_config import OutgoingScriptSetting, SenderSettings


def mail(**fields: Any) -> OutgoingMail:
    base: dict[str, Any] = {
        "mail_id": "m-1",
        "kind": "reply",
        "automatic": False,
        "to": [{"address": "carol@example.org"}, {"address": "no-reply@example.net"}],
        "subject": "Printer",
        "text": "Fixed.\n",
    }
    return OutgoingMail.model_validate({**base, **fields})


def config(*names: str, **settings: Any) -> SystemConfig:
    """Scripts in this order ("-name": disabled); built without the installed-names check, so
    fakes can be named."""
    scripts = [
        OutgoingScriptSetting(name=n.lstrip("-"), enabled=not n.startswith("-")) for n in names
    ]
    return SystemConfig(
        sender=SenderSettings.model_construct(
            outgoing_scripts=tuple(scripts),
            **{**SenderSettings().model_dump(exclude={"outgoing_scripts"}), **settings},
        )
    )


def fakes(**scripts: Script) -> Any:
    return lambda name: scripts[name] if name in scripts else installed(name)


async def test_the_built_in_scripts_drop_no_reply_and_sign() -> None:
    out = await run_scripts(mail(), config("suppress_recipients", "signature", signature="Support"))
    assert isinstance(out, OutgoingMail)
    assert [str(t.address) for t in out.to] == ["carol@example.org"]
    assert out.text == "Fixed.\n\n-- \nSupport\n"


async def test_a_mail_only_to_suppressed_addresses_is_stopped() -> None:
    out = await run_scripts(
        mail(to=[{"address": "MAILER-DAEMON@example.net"}]), config("suppress_recipients")
    )
    assert isinstance(out, Stopped) and out.script == "suppress_recipients"
    assert "every recipient is suppressed" in str(out)


async def test_order_and_enablement_come_from_the_property() -> None:
    seen: list[str] = []

    def recorder(name: str) -> Script:
        async def run(m: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail:
            seen.append(name)
            return m

        return run

    await run_scripts(mail(), config("b", "-c", "a"), load=recorder)
    assert seen == ["b", "a"]


async def test_a_script_may_stop_the_mail() -> None:
    async def stop(m: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail:
        raise StopMail("customer opted out")

    out = await run_scripts(mail(), config("stop", "signature"), load=fakes(stop=stop))
    assert out == Stopped("stop", "customer opted out")


@pytest.mark.parametrize(
    ("update", "error"),
    [
        ({"subject": "x\r\nBcc: victim@example.org"}, "made the mail invalid"),
        ({"mail_id": "other"}, "changed the mail_id"),
    ],
)
async def test_what_a_script_returns_is_checked(update: dict[str, Any], error: str) -> None:
    async def evil(m: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail:
        return m.model_copy(update=update)

    with pytest.raises(Permanent, match=error):
        await run_scripts(mail(), config("evil"), load=fakes(evil=evil))


async def test_a_failing_script_is_permanent_not_skipped() -> None:
    async def broken(m: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail:
        raise KeyError("oops")

    with pytest.raises(Permanent, match="script 'broken' failed: KeyError"):
        await run_scripts(mail(), config("broken"), load=fakes(broken=broken))


def test_only_installed_scripts_can_be_configured() -> None:
    with pytest.raises(ValueError, match="no outgoing-mail script named nope"):
        SenderSettings(outgoing_scripts=(OutgoingScriptSetting(name="nope"),))
