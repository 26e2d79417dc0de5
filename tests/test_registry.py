import types

import pytest

from weightspace.errors import PluginError
from weightspace.hookspecs import KINDS, Lazy, hookimpl
from weightspace.registry import Registry, default_registry


def _plugin(name, *classes, kind="architectures"):
    module = types.ModuleType(name)
    setattr(module, f"weightspace_{kind}", hookimpl(lambda: list(classes)))
    return module


class Alpha:
    name = "alpha"


class AlsoAlpha:
    name = "alpha"


def test_built_in_plugins_come_from_entry_points_with_their_distribution():
    entries = default_registry().entries("architectures")
    assert entries["fno"].source == "neuralop (weightspace 0.1.0)"
    assert entries["mlp-node"].source.startswith("mlp-node (weightspace")
    assert set(KINDS) == {"architectures", "systems", "encoders", "generators", "prompters"}


def test_registering_a_plugin_at_run_time():
    registry = Registry(load_entrypoints=False, plugins=[_plugin("mine", Alpha)])
    assert registry.names("architectures") == ["alpha"]
    assert registry.get("architectures", "alpha") is Alpha
    assert registry.entries("architectures")["alpha"].source == "mine"
    assert registry.names("systems") == []


def test_unknown_name_lists_what_is_registered():
    with pytest.raises(PluginError, match="unknown architecture 'fnoo'; registered architectures: fno, mlp-node"):
        default_registry().get("architectures", "fnoo")
    with pytest.raises(PluginError, match="unknown system 'x'; registered systems: none"):
        Registry(load_entrypoints=False).get("systems", "x")
    with pytest.raises(PluginError, match="unknown plugin kind 'widgets'"):
        default_registry().names("widgets")


def test_duplicate_names_name_both_plugins():
    registry = Registry(load_entrypoints=False, plugins=[_plugin("first", Alpha), _plugin("second", AlsoAlpha)])
    with pytest.raises(PluginError, match="'alpha' is registered twice: by first and by second"):
        registry.names("architectures")


def test_entries_need_a_name():
    registry = Registry(load_entrypoints=False, plugins=[_plugin("nameless", object)])
    with pytest.raises(PluginError, match="without a string 'name'"):
        registry.names("architectures")


def test_registering_invalidates_the_cache():
    registry = Registry(load_entrypoints=False)
    assert registry.names("architectures") == []
    registry.register(_plugin("late", Alpha))
    assert registry.names("architectures") == ["alpha"]


def test_lazy_entries_import_on_first_use_and_must_match_their_name():
    lazy = Lazy("counter", "collections:Counter")
    registry = Registry(load_entrypoints=False, plugins=[_plugin("mine", lazy)])
    assert registry.names("architectures") == ["counter"]
    with pytest.raises(PluginError, match="collections:Counter is named None, not 'counter'"):
        registry.get("architectures", "counter")
    broken = Registry(load_entrypoints=False, plugins=[_plugin("broken", Lazy("x", "no_such_module_xyz:X"))])
    assert broken.names("architectures") == ["x"]
    with pytest.raises(PluginError, match="architectures 'x' of plugin broken: cannot import no_such_module_xyz:X"):
        broken.get("architectures", "x")


def test_built_in_entries_resolve_to_classes_of_their_name():
    registry = default_registry()
    for kind in KINDS:
        for name in registry.names(kind):
            assert registry.get(kind, name).name == name
