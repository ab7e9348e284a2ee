"""The CLI refuses bad values with a message naming the field and a non-zero exit (the same
refusals as the API: they are declared in the typed views); its flags read as English."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import make_mail
from tests.support_cli import cli_env, mailroom


@pytest.fixture
def env(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> dict[str, str]:
    """The CLI's environment on this test's database."""
    return cli_env(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=mongo_db_name,
        secret_key="cli-bad-values-secret-key",
    )


def _refused(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = mailroom(*args, env=env, stdin=stdin)
    assert result.returncode != 0, f"mailroom {' '.join(args)} was accepted: {result.stdout}"
    return " ".join((result.stdout + result.stderr).split())


ACCOUNT = ("accounts", "add", "box", "--username", "u", "--password-stdin")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((*ACCOUNT, "--host", ""), "box.host"),
        ((*ACCOUNT, "--host", "imap.example.org", "--port", "70000"), "box.port"),
        ((*ACCOUNT, "--host", "imap.example.org", "--security", "none"), "security"),
        (("accounts", "add", "box", "--host", "imap.example.org", "--username", "u"), "password"),
        (("outgoing", "set", "--host", ""), "smtp.host"),
        (("outgoing", "set", "--host", "smtp.example.org", "--port", "0"), "smtp.port"),
        (("outgoing", "set", "--host", "smtp.example.org", "--username", "u"), "password"),
        (
            ("settings", "set", "templates", "acknowledgement_body={{ 1/0 }}"),
            "templates.acknowledgement_body",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    env: dict[str, str], args: tuple[str, ...], field: str
) -> None:
    output = _refused(env, *args, stdin="pw\n" if "--password-stdin" in args else None)
    assert field in output, output


def test_boolean_flags_read_as_english(env: dict[str, str]) -> None:
    for command in (("accounts", "add"), ("outgoing", "set")):
        shown = mailroom(*command, "--help", env=env)
        text = " ".join(shown.stdout.split())
        assert "--verify-tls" in text and "--no-verify-tls" in text, text
        assert "--no-no-" not in text and "--no-password-stdin" not in text, text
    added = mailroom(
        *ACCOUNT,
        "--host",
        "imap.example.org",
        "--disabled",
        "--no-verify-tls",
        "--json",
        env=env,
        stdin="pw\n",
    )
    assert added.returncode == 0, added.stderr
    assert '"enabled": false' in added.stdout and '"verify_tls": false' in added.stdout


async def test_simulate_shows_no_rule_none_for_a_rejected_mail(
    env: dict[str, str], api: httpx.AsyncClient, tmp_path: Path
) -> None:
    # A rejection has no routing rule: the line names the script that refused instead.
    scripts = [{"name": "reject_subject"}, {"name": "case_matcher"}]
    values = {"incoming_scripts": scripts, "reject_subject_pattern": "(?i)casino"}
    assert (await api.patch("/settings/processor", json=values)).status_code == 200
    raw, _ = make_mail(subject="Casino bonus", sender="spam@example.org")
    eml = tmp_path / "spam.eml"
    eml.write_bytes(raw)
    result = mailroom("simulate", str(eml), env=env)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "decision: reject: rejected by script 'reject_subject'" in text, text
    assert "None" not in text, text
