"""Frozen-dataclass configs that round-trip through JSON and ``--set key=value`` overrides.

Every component (architecture, later systems and models) describes itself with a frozen dataclass
of plain values (ints, floats, strings, bools and tuples of them). Such a config is hashable, so it
can key caches, and it serialises to JSON for manifests. This module turns user input (a mapping
of overrides, possibly strings from the command line) into such a dataclass, with errors that name
the offending key and the keys that exist.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from weightspace.errors import ConfigError

C = TypeVar("C")

MAX_COUNT = 1_000_000
"""Upper bound of counts and step numbers (candidates, trajectories, batch sizes, training steps):
far above any real use, low enough to refuse a typo before memory is allocated for that many."""


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Split ``key=value`` strings (as given to ``--set``) into a dict of raw strings."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def make_config(cls: type[C], overrides: Mapping[str, Any] | None = None, *, owner: str = "") -> C:
    """Build ``cls`` from its defaults plus ``overrides``, coercing strings to the field types.

    ``owner`` names the component in error messages (e.g. "architecture 'fno'").
    """
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    where = f" for {owner}" if owner else ""
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key {', '.join(map(repr, unknown))}{where}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for key, raw in overrides.items():
        try:
            values[key] = _coerce(raw, hints[key])
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"bad value {raw!r} for {key!r}{where}: {exc}") from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid config{where}: {exc}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _coerce(value: Any, tp: Any) -> Any:
    """Convert ``value`` (possibly a command-line string) to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"expected one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        items = _as_sequence(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in items)
        if len(items) != len(args):
            raise ValueError(f"expected {len(args)} items, got {len(items)}")
        return tuple(_coerce(v, a) for v, a in zip(items, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected an integer")
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        number = float(value)
        # nan passes every range check (comparisons are false) and inf trains nothing: no field takes them
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise TypeError(f"unsupported config type {tp!r}")


def _as_sequence(value: Any) -> list[Any]:
    """Accept a list/tuple, a JSON list string ("[8, 8]"), or a comma-separated string ("8,8")."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid list: {exc.msg}") from None
            return list(parsed)
        return [v for v in text.split(",") if v.strip()]
    raise ValueError("expected a list")


def require_positive(config: Any, *keys: str) -> None:
    """Raise ``ValueError`` unless every number in the named fields (tuples included) is > 0.

    Configs call this from ``__post_init__``.
    """
    for key in keys:
        value = getattr(config, key)
        if any(v <= 0 for v in _numbers(value)):
            raise ValueError(f"{key} must be positive, got {value}")


def require_at_most(config: Any, limit: int, *keys: str) -> None:
    """Raise ``ValueError`` if a number in the named fields exceeds ``limit``.

    Configs call this from ``__post_init__`` for sizes that allocate memory in proportion (experts,
    trajectories, batches) or run that many steps, so a typo (``size=1000000000``) is refused before
    it reaches the allocator instead of failing inside it."""
    for key in keys:
        value = getattr(config, key)
        if any(v > limit for v in _numbers(value)):
            raise ValueError(f"{key} must be at most {limit}, got {value}")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _numbers(item)]
    return [value]
