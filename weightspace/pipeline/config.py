"""A run config: which system, architecture, profile and seed, the method's label, and the encoder,
generator and prompter with their settings (``configs/*.toml``).

A config can extend another (``extends = "base.toml"``, a path relative to it): its sections are
merged into the base's, key by key, except that a section naming another component replaces the
base's section (its options belong to the old component).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightspace.config import make_config
from weightspace.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("system_settings", "architecture_config", "zoo", "encoder", "encoder_training")
SECTIONS += ("generator", "prompter", "generator_training")
TOP_LEVEL = ("system", "architecture", "profile", "seed", "method")
"""The run config's keys outside any section."""


@dataclass(frozen=True)
class RunConfig:
    system: str
    architecture: str
    profile: str = "quick"
    seed: int = 0
    method: str = "dynadiff"
    """The label of the run's result rows (e.g. ``flat-vae`` for a run with that encoder)."""
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(read_config_toml(Path(path), ()), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run config") -> RunConfig:
        data = dict(data)
        missing = [k for k in ("system", "architecture") if k not in data]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}")
        top = {k: data.pop(k) for k in TOP_LEVEL if k in data}
        for key, section in (("system", "system_settings"), ("architecture", "architecture_config")):
            if isinstance(top[key], dict):
                raise ConfigError(f"{where}: {key} is the {key}'s name; its settings go in [{section}]")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
        sections = {s: dict(data.get(s, {})) for s in SECTIONS}
        for kind, default in (("encoder", "graph-vae"), ("generator", "dit-diffusion"), ("prompter", "dynamics")):
            sections[kind].setdefault("name", default)
        return dataclasses.replace(make_config(cls, top, owner=where), sections=sections)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TOP_LEVEL}


def read_config_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A run config's TOML with the configs it extends merged in (see the module docstring)."""
    if not path.is_file():
        raise ConfigError(f"no such run config: {path}")
    if path.resolve() in chain:
        raise ConfigError(f"{path} extends itself through {' -> '.join(map(str, chain))}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    return merge_config(read_config_toml(path.parent / parent, (*chain, path.resolve())), data)


def merge_config(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` merged into the config dict ``base``: sections key by key, except that a section
    naming another component replaces the base's section (its options belong to the old component)."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) == old.get("name"):
            value = {**old, **value}
        merged[key] = value
    return merged


def content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]
