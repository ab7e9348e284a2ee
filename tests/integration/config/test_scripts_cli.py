"""``mailroom scripts …`` and the list-setting guard as an operator meets them: the real CLI
process on real servers, and the README section that documents the verbs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.runtime import Runtime
from tests.support import server_settings
from tests.support_cli import cli_env, mailroom

README = Path(__file__).parents[3] / "README.md"
REFUSAL = "every reply would open a new case"
ONLY_SIZE_LIMIT = 'incoming_scripts=[{"name": "size_limit"}]'


def _order(stdout: str) -> list[tuple[str, bool]]:
    return [(s["name"], s["enabled"]) for s in json.loads(stdout) if s["position"] is not None]


async def _last_audit(rabbit_url: str, mongo_url: str, database: str) -> tuple[str, str | None]:
    rt = Runtime(
        server_settings(
            rabbit_url=rabbit_url, mongo_url=mongo_url, database=database, instance="audit"
        )
    )
    await rt.start_store()
    try:
        entry = (await rt.store.properties.log(limit=1))[0]
    finally:
        await rt.close()
    return f"{entry.module}/{entry.key}", entry.forced


async def test_script_verbs_and_the_guard_from_the_cli(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="cli-key"
    )
    listed = mailroom("scripts", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    default = _order(listed.stdout)
    assert ("case_matcher", True) in default and ("reject_subject", False) in default

    table = mailroom("scripts", "list", env=env)
    assert table.returncode == 0 and "mailroom 0.1.0" in table.stdout

    enabled = mailroom("scripts", "enable", "reject_subject", "--json", env=env)
    assert enabled.returncode == 0, enabled.stderr
    assert ("reject_subject", True) in _order(enabled.stdout)
    moved = mailroom("scripts", "move", "case_matcher", "--before", "size_limit", "--json", env=env)
    assert moved.returncode == 0, moved.stderr
    assert _order(moved.stdout)[0] == ("case_matcher", True)
    outgoing = mailroom("scripts", "move", "signature", "--top", "--outgoing", "--json", env=env)
    assert outgoing.returncode == 0, outgoing.stderr
    assert next(n for n, _ in _order(outgoing.stdout)) == "signature"

    unknown = mailroom("scripts", "disable", "nope", env=env)
    assert unknown.returncode == 1
    assert "name: no incoming-mail script 'nope'" in unknown.stdout + unknown.stderr

    refused = mailroom("settings", "set", "processor", ONLY_SIZE_LIMIT, env=env)
    shown = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 1
    assert "processor/incoming_scripts:" in refused.stdout and "- case_matcher" in refused.stdout
    assert REFUSAL in shown
    still = mailroom("scripts", "list", "--json", env=env)
    assert ("case_matcher", True) in _order(still.stdout)

    forced = mailroom("settings", "set", "processor", ONLY_SIZE_LIMIT, "--force", env=env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "- case_matcher" in forced.stdout and "saved (forced)" in forced.stdout
    assert _order(mailroom("scripts", "list", "--json", env=env).stdout) == [("size_limit", True)]
    where, reason = await _last_audit(rabbit_url, mongo_url, mongo_db_name)
    assert where == "processor/incoming_scripts" and reason is not None and REFUSAL in reason


def test_the_readme_documents_the_script_verbs() -> None:
    text = README.read_text()
    section = text.split("## Incoming-mail scripts", 1)[1].split("\n## ", 1)[0]
    for verb in ("list", "enable", "disable", "move"):
        assert re.search(rf"mailroom scripts {verb}\b", section), verb
    for words in ("--before", "--after", "--outgoing", "--force", "/scripts/incoming"):
        assert words in section, words
