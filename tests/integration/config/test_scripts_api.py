"""Script verbs and the case-matching guard through the HTTP API, on real MongoDB and RabbitMQ."""

from __future__ import annotations

from typing import Any

import httpx

from shared.models.config import ProcessorSettings
from shared.service import Stack

DEFAULT_ORDER = [s.name for s in ProcessorSettings().incoming_scripts]
ONLY_SIZE_LIMIT = [{"name": "size_limit"}]
REFUSAL = "every reply would open a new case"


def _order(listing: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(s["name"], s["enabled"]) for s in listing["scripts"] if s["position"] is not None]


async def test_scripts_are_listed_in_order_with_their_package(api: httpx.AsyncClient) -> None:
    response = await api.get("/scripts/incoming")
    assert response.status_code == 200, response.text
    listing = response.json()
    assert listing["property"] == "processor/incoming_scripts"
    listed = [s for s in listing["scripts"] if s["position"] is not None]
    assert [s["name"] for s in listed] == DEFAULT_ORDER
    assert [s["position"] for s in listed] == list(range(1, len(DEFAULT_ORDER) + 1))
    assert {s["package"] for s in listed} == {"mailroom"}
    # Installed scripts that are not in the list (they do not run) come after it.
    unlisted = listing["scripts"][len(listed) :]
    assert all(s["position"] is None and not s["enabled"] for s in unlisted)
    matchers = [s["name"] for s in listing["scripts"] if s["matches_cases"]]
    assert matchers == ["case_matcher"]
    outgoing = (await api.get("/scripts/outgoing")).json()
    assert outgoing["property"] == "sender/outgoing_scripts"
    assert {s["matches_cases"] for s in outgoing["scripts"]} == {None}


async def test_enable_disable_and_move_change_the_order_and_reach_the_services(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    enabled = await api.post("/scripts/incoming/reject_subject/enable")
    assert enabled.status_code == 200, enabled.text
    assert ("reject_subject", True) in _order(enabled.json())
    moved = await api.post("/scripts/incoming/case_matcher/move", json={"before": "size_limit"})
    assert moved.status_code == 200, moved.text
    assert _order(moved.json())[0] == ("case_matcher", True)
    after = await api.post("/scripts/incoming/size_limit/move", json={"after": "rate_limit"})
    names = [n for n, _ in _order(after.json())]
    assert names.index("size_limit") == names.index("rate_limit") + 1
    disabled = await api.post("/scripts/incoming/auto_reply/disable")
    assert ("auto_reply", False) in _order(disabled.json())
    loaded = config_stack.rt.config.processor.incoming_scripts
    assert [(s.name, s.enabled) for s in loaded] == _order(disabled.json())
    bottom = await api.post("/scripts/outgoing/suppress_recipients/move", json={"to": "bottom"})
    assert [n for n, _ in _order(bottom.json())][-1] == "suppress_recipients"
    assert config_stack.rt.config.sender.outgoing_scripts[0].name == "signature"


async def test_bad_names_and_places_are_refused_naming_the_field(api: httpx.AsyncClient) -> None:
    unknown = await api.post("/scripts/incoming/nope/enable")
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("name: ")
    target = await api.post("/scripts/incoming/size_limit/move", json={"after": "nope"})
    assert target.status_code == 422 and target.json()["detail"].startswith("after: ")
    two = await api.post("/scripts/incoming/size_limit/move", json={"before": "a", "to": "top"})
    assert two.status_code == 422 and "exactly one of before, after" in two.json()["detail"]
    kind = await api.get("/scripts/sideways")
    assert kind.status_code == 422 and "kind" in kind.json()["detail"]


async def test_no_case_matching_script_is_refused_on_every_write_path(
    api: httpx.AsyncClient,
) -> None:
    value = {"value": ONLY_SIZE_LIMIT}
    refused = [
        await api.post("/scripts/incoming/case_matcher/disable"),
        await api.patch("/settings/processor", json={"incoming_scripts": ONLY_SIZE_LIMIT}),
        await api.put("/catalogue/processor/incoming_scripts", json=value),
        await api.put("/properties/processor/incoming_scripts", json=value),
    ]
    exported = (await api.post("/config/export", json={})).json()
    exported["properties"].append(
        {"module": "processor", "key": "incoming_scripts", "value": ONLY_SIZE_LIMIT}
    )
    refused.append(await api.post("/config/import", json={"document": exported}))
    for response in refused:
        assert response.status_code == 422, response.text
        assert REFUSAL in response.json()["detail"]
    listing = (await api.get("/scripts/incoming")).json()
    assert [n for n, _ in _order(listing)] == DEFAULT_ORDER


async def test_a_forced_change_is_applied_and_audited_as_forced(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    forced = await api.post("/scripts/incoming/case_matcher/disable", params={"force": "true"})
    assert forced.status_code == 200, forced.text
    assert ("case_matcher", False) in _order(forced.json())
    entry = (await config_stack.rt.store.properties.log(limit=1))[0]
    assert (entry.module, entry.key, entry.who) == ("processor", "incoming_scripts", "api:admin")
    assert entry.forced is not None and REFUSAL in entry.forced
    # Unrelated writes go on; the next change to the list must be forced again.
    other = await api.patch("/settings/settings", json={"poll_interval_seconds": 9})
    assert other.status_code == 200, other.text
    assert (await config_stack.rt.store.properties.log(limit=1))[0].forced is None
    again = await api.post("/scripts/incoming/size_limit/disable")
    assert again.status_code == 422 and REFUSAL in again.json()["detail"]
    repaired = await api.post("/scripts/incoming/case_matcher/enable")
    assert repaired.status_code == 200, repaired.text
    assert (await config_stack.rt.store.properties.log(limit=1))[0].forced is None
