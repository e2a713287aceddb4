"""moto's DynamoDB answers, with their items serialised directly: :func:`install`, undone by what it returns.

moto builds every answer by walking the operation's output shape with a generic serializer that looks each
member up through an attribute picker (several ``getattr`` tries and name transforms per member). An item is a
map of ``AttributeValue`` structures, so every attribute of every item pays that walk: in the local runtime it
was about a fifth of all CPU, most of it the items of ``Query`` answers (a run's timeline, read by every step
that reads its run and by every ``GET /runs/<id>``).

An ``AttributeValue`` needs none of it. moto hands the serializer plain ``{type: value}`` dicts (its
``dynamo_to_dict``), and the JSON protocol writes them as they are, but for the blobs (base64) and the strings
(``str``). :func:`attribute_value` does exactly that and nothing else; every other shape of the answer
(counts, keys' maps, consumed capacity, the envelope and its headers) is still moto's own serializer's work.
Only DynamoDB's serializer is changed. ``tests/local/test_moto_dynamodb_json.py`` checks that every item
operation's answer is the same, byte for byte once parsed, as unpatched moto's, for items holding every
attribute type.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

ATTRIBUTE_VALUE = "AttributeValue"
_STRINGS = frozenset({"S", "N"})
_STRING_SETS = frozenset({"SS", "NS"})
_AS_IS = frozenset({"BOOL", "NULL"})


def _blob(value: str | bytes) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).strip().decode("utf-8")


def _string(value: Any) -> Any:
    return str(value) if value not in (None, {}, []) else value


def attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    """One ``AttributeValue`` as the JSON protocol writes it (what moto's serializer writes for it)."""
    out: dict[str, Any] = {}
    for kind, inner in value.items():
        if inner is None:
            continue
        if kind in _STRINGS:
            out[kind] = _string(inner)
        elif kind == "M":
            out[kind] = {name: attribute_value(member) for name, member in inner.items()}
        elif kind == "L":
            out[kind] = [attribute_value(member) for member in inner]
        elif kind in _AS_IS:
            out[kind] = inner
        elif kind in _STRING_SETS:
            out[kind] = [_string(member) for member in inner]
        elif kind == "B":
            out[kind] = _blob(inner)
        elif kind == "BS":
            out[kind] = [_blob(member) for member in inner]
        # any other key is no member of AttributeValue: moto's serializer leaves it out too
    return out


def _is_attribute_map(shape: Any) -> bool:
    value = getattr(shape, "value", None)
    return shape.type_name == "map" and value is not None and value.name == ATTRIBUTE_VALUE


def install() -> Callable[[], None]:
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize

    def _serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and isinstance(value, dict) and self.operation_model.service_model.service_name == "dynamodb":
            if shape.name == ATTRIBUTE_VALUE:
                serialized[key] = attribute_value(value)
                return
            if _is_attribute_map(shape):
                serialized[key] = {name: attribute_value(member) for name, member in value.items()
                                   if member is not None}
                return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize = _serialize  # type: ignore[method-assign]

    def uninstall() -> None:
        BaseJSONSerializer._serialize = original  # type: ignore[method-assign]

    return uninstall
