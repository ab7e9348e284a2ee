"""System properties (module, key, value) ↔ the typed views in ``shared.models.config``.

Field modules hold one property per field of their view (``settings``/``poll_interval_seconds``);
object modules hold one property per object (``incoming.accounts``/``<name>`` holds a whole
account). Secrets inside values are stored sealed (see ``shared.secrets``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel, SecretStr, ValidationError

from shared.conversation import ConversationSettings
from shared.errors import ConfigRejected
from shared.models.config import (
    Addresses,
    GlobalSettings,
    IncomingAccount,
    OutgoingConnection,
    ProcessorSettings,
    SystemConfig,
)
from shared.models.outgoing_config import SenderSettings, SystemSettings, TemplateSettings
from shared.models.records import Property
from shared.secrets import SecretBox, is_sealed

ACCOUNTS_MODULE: Final = "incoming.accounts"
OUTGOING_MODULE: Final = "outgoing"
OUTGOING_KEY: Final = "smtp"
FIELD_MODULES: Final[dict[str, type[BaseModel]]] = {
    "settings": GlobalSettings,
    "addresses": Addresses,
    "processor": ProcessorSettings,
    "conversation": ConversationSettings,
    "templates": TemplateSettings,
    "system": SystemSettings,
    "sender": SenderSettings,
}
SECRET_FIELDS: Final = frozenset({"password", "client_secret", "outgoing_password"})


def describe_validation_error(where: str, exc: ValidationError) -> str:
    """One readable line per problem, naming the property and field to fix."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}{'.' + loc if loc else ''}: {msg}")
    return "; ".join(lines)


def check_key(module: str, key: str) -> None:
    """Refuse a property that no view knows."""
    if module in FIELD_MODULES:
        fields = FIELD_MODULES[module].model_fields
        if key not in fields:
            raise ConfigRejected(
                f"unknown key {key!r} in module {module!r}; known keys: {', '.join(sorted(fields))}"
            )
    elif module == OUTGOING_MODULE:
        if key != OUTGOING_KEY:
            raise ConfigRejected(f"module 'outgoing' has one key, 'smtp', not {key!r}")
    elif module != ACCOUNTS_MODULE:
        known = sorted([*FIELD_MODULES, ACCOUNTS_MODULE, OUTGOING_MODULE])
        raise ConfigRejected(f"unknown module {module!r}; known modules: {', '.join(known)}")


def seal_secrets(value: Any, box: SecretBox) -> Any:
    """The stored form of an object value: plain secrets sealed, sealed ones kept."""
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in SECRET_FIELDS and item is not None and not is_sealed(item):
            plain = item.get_secret_value() if isinstance(item, SecretStr) else str(item)
            out[name] = box.seal(plain)
        else:
            out[name] = item
    return out


def _open_secrets(value: Any, box: SecretBox) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {k: box.open(v) if is_sealed(v) else v for k, v in value.items()}


def build_config(properties: Iterable[Property], *, box: SecretBox, version: int) -> SystemConfig:
    """Derive and validate every typed view; ConfigRejected says which property is wrong."""
    fields: dict[str, dict[str, Any]] = {module: {} for module in FIELD_MODULES}
    accounts: dict[str, IncomingAccount] = {}
    outgoing: OutgoingConnection | None = None
    for prop in properties:
        check_key(prop.module, prop.key)
        where = f"{prop.module}/{prop.key}"
        try:
            if prop.module in FIELD_MODULES:
                fields[prop.module][prop.key] = prop.value
            elif prop.module == ACCOUNTS_MODULE:
                raw = _open_secrets(prop.value, box)
                # Anything but an object is left for the model to refuse, naming the property.
                named = {**raw, "name": prop.key} if isinstance(raw, Mapping) else raw
                accounts[prop.key] = IncomingAccount.model_validate(named)
            else:
                outgoing = OutgoingConnection.model_validate(_open_secrets(prop.value, box))
        except ValidationError as exc:
            raise ConfigRejected(describe_validation_error(where, exc)) from None
    views: dict[str, BaseModel] = {}
    for module, model in FIELD_MODULES.items():
        try:
            views[module] = model.model_validate(fields[module])
        except ValidationError as exc:
            raise ConfigRejected(describe_validation_error(module, exc)) from None
    try:
        return _system_config(version, accounts, outgoing, views)
    except ValidationError as exc:  # a rule across views (e.g. outgoing/smtp credentials_from)
        raise ConfigRejected(describe_validation_error("configuration", exc)) from None


def _system_config(
    version: int,
    accounts: dict[str, IncomingAccount],
    outgoing: OutgoingConnection | None,
    views: dict[str, BaseModel],
) -> SystemConfig:
    return SystemConfig(
        version=version,
        accounts=accounts,
        outgoing=outgoing,
        settings=GlobalSettings.model_validate(views["settings"].model_dump()),
        addresses=Addresses.model_validate(views["addresses"].model_dump()),
        processor=ProcessorSettings.model_validate(views["processor"].model_dump()),
        conversation=ConversationSettings.model_validate(views["conversation"].model_dump()),
        templates=TemplateSettings.model_validate(views["templates"].model_dump()),
        system=SystemSettings.model_validate(views["system"].model_dump()),
        sender=SenderSettings.model_validate(views["sender"].model_dump()),
    )
