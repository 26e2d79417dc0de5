"""The plugin registry: a pluggy PluginManager that finds components by kind and name.

Plugins are discovered through the ``weightspace`` entry-point group (built-in ones included) and
can also be registered at run time (for tests, notebooks). Asking for a name that is not there, or
two plugins claiming the same name, is an error that lists what is registered and by whom.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from weightspace import hookspecs
from weightspace.errors import PluginError
from weightspace.hookspecs import KINDS, PROJECT, Lazy


@dataclass(frozen=True)
class PluginEntry:
    """One registered component: its kind, name, class and where it came from."""

    kind: str
    name: str
    ref: type | Lazy = field(repr=False)
    """The class, or a :class:`Lazy` reference imported by the first use of :attr:`cls`."""
    source: str
    """The registering plugin, with its distribution and version when installed from one."""

    @property
    def cls(self) -> type:
        if not isinstance(self.ref, Lazy):
            return self.ref
        try:
            cls = self.ref.load()
        except Exception as exc:  # a broken plugin module must not look like our bug
            what = f"{self.kind} {self.name!r} of plugin {self.source}"
            raise PluginError(f"{what}: cannot import {self.ref.target}: {exc}") from exc
        if getattr(cls, "name", None) != self.name:
            raise PluginError(
                f"{self.kind} {self.name!r} of plugin {self.source}: {self.ref.target} is named "
                f"{getattr(cls, 'name', None)!r}, not {self.name!r}"
            )
        object.__setattr__(self, "ref", cls)
        return cls


class Registry:
    """Components by kind and name. ``Registry()`` loads every installed plugin."""

    def __init__(self, *, load_entrypoints: bool = True, plugins: Iterable[object] = ()) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        if load_entrypoints:
            try:
                self._pm.load_setuptools_entrypoints(PROJECT)
            except Exception as exc:  # a broken third-party package must not look like our bug
                raise PluginError(f"a plugin in the {PROJECT!r} entry-point group failed to load: {exc!r}") from exc
        for plugin in plugins:
            self.register(plugin)
        self._pm.check_pending()
        self._entries: dict[str, dict[str, PluginEntry]] | None = None

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a module or object with ``hookimpl`` functions (what an entry point does)."""
        self._pm.register(plugin, name=name)
        self._pm.check_pending()
        self._entries = None

    # -- lookup ---------------------------------------------------------------------------------
    def entries(self, kind: str) -> dict[str, PluginEntry]:
        """``{name: entry}`` of one kind."""
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        if self._entries is None:
            self._entries = {k: self._collect(k) for k in KINDS}
        return self._entries[kind]

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries(kind))

    def get(self, kind: str, name: str) -> type:
        """The class registered as ``name`` of ``kind``."""
        entries = self.entries(kind)
        if name not in entries:
            singular = kind.removesuffix("s")
            known = ", ".join(sorted(entries)) or "none"
            raise PluginError(f"unknown {singular} {name!r}; registered {kind}: {known}")
        return entries[name].cls

    def architecture(self, name: str, overrides: Mapping[str, Any] | None = None):
        """An :class:`ArchitectureAdapter` for ``name`` with its default config plus ``overrides``."""
        return self.get("architectures", name).from_overrides(overrides)

    def system(self, name: str, profile: str = "quick", overrides: Mapping[str, Any] | None = None):
        """A :class:`System` for ``name`` with a profile's settings plus ``overrides``."""
        return self.get("systems", name)(profile, overrides)

    # -- collection -----------------------------------------------------------------------------
    def _sources(self) -> dict[int, str]:
        dists = {id(plugin): f"{dist.project_name} {dist.version}" for plugin, dist in self._pm.list_plugin_distinfo()}
        return {
            id(plugin): f"{self._pm.get_name(plugin)} ({dists[id(plugin)]})"
            if id(plugin) in dists
            else str(self._pm.get_name(plugin))
            for plugin in self._pm.get_plugins()
        }

    def _collect(self, kind: str) -> dict[str, PluginEntry]:
        sources = self._sources()
        hook = getattr(self._pm.hook, f"weightspace_{kind}")
        found: dict[str, PluginEntry] = {}
        # call each implementation on its own so that every name can be traced to its plugin
        for impl in hook.get_hookimpls():  # registration order
            source = sources.get(id(impl.plugin), impl.plugin_name)
            for ref in impl.function() or []:
                name = getattr(ref, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {source} returned a {kind} entry without a string 'name': {ref!r}")
                if name in found:
                    raise PluginError(
                        f"{kind} name {name!r} is registered twice: by {found[name].source} and by {source}; "
                        f"registered {kind}: {', '.join(sorted(found))}"
                    )
                found[name] = PluginEntry(kind, name, ref, source)
        return found


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The process-wide registry of installed plugins (loaded once)."""
    return Registry()
