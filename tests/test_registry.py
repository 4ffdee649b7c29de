"""The builtin registry: plugins by name through the chanrouter.plugins entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from plugin_sdk import OptionError, Plugin
from router.builtins.authz import Authz
from router.builtins.host_mount import HostMount
from router.builtins.log import Log
from router.builtins.registry import (
    GROUP,
    PluginLoadError,
    UnknownPluginError,
    available,
    instantiate,
    load,
)
from router.builtins.set_field import SetField

BUILTINS = {"authz": Authz, "host-mount": HostMount, "log": Log, "set-field": SetField}
VALID_OPTIONS = {
    "authz": "allow *",
    "host-mount": "/data /var/data",
    "log": "",
    "set-field": "CPU_LIMIT HostConfig.NanoCpus cpus",
}


def test_every_builtin_is_registered_and_its_entry_point_resolves_to_its_class() -> None:
    entry_points = available()
    assert set(BUILTINS) <= set(entry_points)
    for name, cls in BUILTINS.items():
        assert entry_points[name].load() is cls


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_load_configures_an_instance_whose_info_name_is_the_registered_name(name: str) -> None:
    plugin = load(name, VALID_OPTIONS[name])
    assert type(plugin) is BUILTINS[name]
    assert plugin.info().name == name
    assert plugin.option == VALID_OPTIONS[name]


def test_load_can_name_the_instance() -> None:
    plugin = load("authz", "deny *", instance_name="authz-2")
    assert plugin.info().name == "authz-2"


def test_an_unknown_name_is_an_error_listing_the_available_ones() -> None:
    with pytest.raises(UnknownPluginError) as caught:
        load("host-mnt", "/a /b")
    text = str(caught.value)
    assert text.startswith("unknown plugin 'host-mnt' (available: ")
    for name in BUILTINS:
        assert name in text
    assert isinstance(caught.value, LookupError)


def test_an_invalid_option_is_an_option_error_naming_plugin_and_option() -> None:
    with pytest.raises(OptionError, match="plugin 'host-mount': bad option '/data': expected two"):
        load("host-mount", "/data")


def test_an_entry_point_to_something_not_a_plugin_class_is_a_clear_error() -> None:
    bogus = EntryPoint("bogus", "plugin_sdk.message:Message", GROUP)
    with pytest.raises(PluginLoadError, match=r"'bogus': plugin_sdk\.message:Message is <class"):
        instantiate(bogus)
    instance = EntryPoint("instance", "plugin_sdk.reply:passthrough", GROUP)
    with pytest.raises(PluginLoadError, match=r"not a plugin_sdk\.Plugin subclass"):
        instantiate(instance)


def test_an_entry_point_that_fails_to_import_is_a_clear_error() -> None:
    missing = EntryPoint("gone", "router.builtins.no_such_module:Gone", GROUP)
    with pytest.raises(PluginLoadError, match=r"'gone': cannot import .*ModuleNotFoundError"):
        instantiate(missing)


def test_instantiate_accepts_any_plugin_subclass_entry_point() -> None:
    plugin = instantiate(EntryPoint("x", "router.builtins.log:Log", GROUP), "debug", name="x-log")
    assert isinstance(plugin, Plugin) and plugin.info().name == "x-log"
