"""The host-mount builtin: option parsing and adding one bind to container.create."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, Verdict, passthrough
from plugin_sdk.testing import PluginHarness, run_plugin
from router.builtins.host_mount import HostMount


def create(body: Any) -> Message:
    return Message("container.create", body)


def body_after(plugin: HostMount, body: Any) -> Any:
    """The body that goes on after ``plugin`` handled a container.create with ``body``."""
    [reply] = run_plugin(plugin, create(body))
    assert reply.verdict is Verdict.CONTINUE, reply.reason
    return reply.messages[0].body if reply.messages else body


def test_the_seed_example_adds_the_bind_creating_hostconfig() -> None:
    body = body_after(HostMount("/data /var/data"), {"Image": "busybox"})
    assert body == {"Image": "busybox", "HostConfig": {"Binds": ["/data:/var/data"]}}


def test_existing_binds_and_fields_are_kept_and_the_bind_appended() -> None:
    given_body = {"Image": "x", "HostConfig": {"Binds": ["/a:/b:ro"], "Memory": 1}, "Env": []}
    body = body_after(HostMount("/data /var/data"), given_body)
    assert body == {
        "Image": "x",
        "HostConfig": {"Binds": ["/a:/b:ro", "/data:/var/data"], "Memory": 1},
        "Env": [],
    }


def test_null_hostconfig_and_binds_are_treated_as_missing() -> None:
    plugin = HostMount("/data /var/data")
    assert body_after(plugin, {"HostConfig": None})["HostConfig"] == {"Binds": ["/data:/var/data"]}
    assert body_after(plugin, {"HostConfig": {"Binds": None}})["HostConfig"]["Binds"] == [
        "/data:/var/data"
    ]


def test_the_replacement_keeps_the_message_id_and_headers() -> None:
    message = Message("container.create", {}, headers={"trace": "t1"})
    [reply] = run_plugin(HostMount("/data /var/data"), message)
    [out] = reply.messages
    assert (out.type, out.id, out.headers) == (message.type, message.id, message.headers)


@pytest.mark.parametrize("existing", ["/data:/var/data", "/data:/var/data:ro", "/data/:/var/data/"])
def test_an_existing_identical_bind_passes_the_message_unchanged(existing: str) -> None:
    [reply] = run_plugin(
        HostMount("/data /var/data"), create({"HostConfig": {"Binds": [existing]}})
    )
    assert reply == passthrough()


def test_another_source_on_the_same_target_is_an_error_naming_both() -> None:
    [reply] = run_plugin(
        HostMount("/data /var/data"), create({"HostConfig": {"Binds": ["/other:/var/data"]}})
    )
    assert reply.verdict is Verdict.ERROR
    assert "'/other'" in reply.reason and "'/data:/var/data'" in reply.reason


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("text", "body must be a map, got str"),
        ([1], "body must be a map, got list"),
        ({"HostConfig": []}, "HostConfig must be a map, got list"),
        ({"HostConfig": {"Binds": "/a:/b"}}, "HostConfig.Binds must be a list of strings"),
        ({"HostConfig": {"Binds": [1]}}, "HostConfig.Binds must be a list of strings"),
    ],
)
def test_a_malformed_body_is_an_error_reply_saying_so(body: Any, complaint: str) -> None:
    [reply] = run_plugin(HostMount("/data /var/data"), create(body))
    assert reply.verdict is Verdict.ERROR
    assert complaint in reply.reason


async def test_only_container_create_is_accepted() -> None:
    plugin = HostMount("/data /var/data")
    assert plugin.info().accepts == ("container.create",)
    async with PluginHarness(plugin, strict=False) as harness:
        assert await harness.send("container.start", {"Id": "x"}) == passthrough()


def test_quoted_paths_with_spaces_and_normalisation() -> None:
    plugin = HostMount("'/my data/' \"/var/my data\"")
    assert plugin.bind == "/my data:/var/my data"


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        ("", "expected two absolute paths 'SRC DST', got 0 word"),
        ("/data", "got 1 word"),
        ("/a /b /c", "got 3 word"),
        ("data /var/data", "SRC 'data' is not an absolute path"),
        ("/data var/data", "DST 'var/data' is not an absolute path"),
        ("/da:ta /var/data", "SRC '/da:ta' contains ':'"),
        ("'/data /var/data", "cannot split into words"),
    ],
)
def test_an_invalid_option_is_an_option_error_naming_plugin_and_problem(
    option: str, complaint: str
) -> None:
    with pytest.raises(OptionError) as caught:
        HostMount(option)
    text = str(caught.value)
    assert text.startswith(f"plugin 'host-mount': bad option {option!r}: ")
    assert complaint in text


_path = st.lists(st.text("abc-_ ", min_size=1, max_size=4), min_size=1, max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)
_binds = st.lists(
    st.tuples(_path, _path).map(":".join).filter(lambda b: not b.endswith(":/var/data")),
    max_size=4,
)
_extra = st.dictionaries(st.sampled_from(["Image", "Env", "Cmd", "Labels"]), st.integers())


@settings(max_examples=100, deadline=None)
@given(binds=_binds, extra=_extra, with_host_config=st.booleans())
def test_applying_twice_equals_applying_once_and_the_bind_appears_once(
    binds: list[str], extra: dict[str, int], with_host_config: bool
) -> None:
    plugin = HostMount("/data /var/data")
    body: dict[str, Any] = dict(extra)
    if with_host_config:
        body["HostConfig"] = {"Binds": binds, "Privileged": False}
    original = copy.deepcopy(body)

    once = body_after(plugin, body)
    twice = body_after(plugin, once)

    assert body == original  # the input message is never mutated
    assert twice == once
    assert once["HostConfig"]["Binds"].count("/data:/var/data") == 1
    assert once["HostConfig"]["Binds"][:-1] == (binds if with_host_config else [])
    assert {k: v for k, v in once.items() if k != "HostConfig"} == extra
