"""The set-field builtin: env var to body field, with typed conversion."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, Verdict, passthrough
from plugin_sdk.testing import run_plugin
from router.builtins.set_field import SetField, parse_bytes_size, parse_cpus


def body_after(plugin: SetField, body: Any) -> Any:
    """The body that goes on after ``plugin`` handled a container.create with ``body``."""
    [reply] = run_plugin(plugin, Message("container.create", body))
    assert reply.verdict is Verdict.CONTINUE, reply.reason
    return reply.messages[0].body if reply.messages else body


def test_cpus_from_env_become_nano_cpus() -> None:
    body = body_after(SetField("CPU_LIMIT HostConfig.NanoCpus cpus"), {"Env": ["CPU_LIMIT=2"]})
    assert body == {"Env": ["CPU_LIMIT=2"], "HostConfig": {"NanoCpus": 2_000_000_000}}


def test_a_memory_size_from_env_becomes_bytes_next_to_existing_fields() -> None:
    plugin = SetField("MEMORY_LIMIT HostConfig.Memory bytes-size")
    body = body_after(plugin, {"Env": ["A=1", "MEMORY_LIMIT=512m"], "HostConfig": {"Binds": []}})
    assert body["HostConfig"] == {"Binds": [], "Memory": 536_870_912}


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("str", "hello=world", "hello=world"),
        ("int", "-42", -42),
        ("int", " 7 ", 7),
        ("bool", "TRUE", True),
        ("bool", "off", False),
        ("bool", "1", True),
        ("bytes-size", "1.5g", 1_610_612_736),
        ("bytes-size", "64KiB", 65_536),
        ("bytes-size", "100", 100),
        ("bytes-size", "2 MB", 2_097_152),
        ("cpus", "0.5", 500_000_000),
        ("cpus", "0.000000001", 1),
    ],
)
def test_each_type_converts_the_env_value(kind: str, raw: str, value: object) -> None:
    body = body_after(SetField(f"V Out {kind}"), {"Env": [f"V={raw}"]})
    assert body["Out"] == value and type(body["Out"]) is type(value)


def test_the_type_defaults_to_str_and_the_path_may_be_any_dotted_field() -> None:
    body = body_after(SetField("TEAM Labels.team"), {"Env": ["TEAM=infra"]})
    assert body["Labels"] == {"team": "infra"}


def test_the_last_of_repeated_env_entries_counts() -> None:
    body = body_after(SetField("N X int"), {"Env": ["N=1", "N=2"]})
    assert body["X"] == 2


def test_the_env_var_overrides_a_value_already_set() -> None:
    body = body_after(
        SetField("N HostConfig.Memory int"), {"Env": ["N=5"], "HostConfig": {"Memory": 9}}
    )
    assert body["HostConfig"]["Memory"] == 5


@pytest.mark.parametrize(
    ("option", "held", "replaced"),
    [
        ("N A.X int", 1, False),  # the same value of the same type: nothing to do
        ("N A.X int", 2, True),
        ("N A.X int", "1", True),  # the same text, but the body holds a string
        ("N A.X bool", 1, True),  # True == 1 in Python, not in the body's JSON
        ("N A.X int", True, True),
        ("N A.X str", "1", False),
    ],
)
def test_a_field_already_holding_the_value_passes_unless_its_type_differs(
    option: str, held: object, replaced: bool
) -> None:
    body = {"Env": ["N=1"], "A": {"X": held}, "Other": [{"deep": "x"}]}
    [reply] = run_plugin(SetField(option), Message("container.create", body))
    assert reply.verdict is Verdict.CONTINUE
    assert bool(reply.messages) is replaced
    if replaced:
        assert type(reply.messages[0].body["A"]["X"]) is not type(held) or (
            reply.messages[0].body["A"]["X"] != held
        )


@pytest.mark.parametrize("body", [{}, {"Env": None}, {"Env": []}, {"Env": ["OTHER=1", "NAME"]}])
def test_an_absent_env_var_leaves_the_message_unchanged(body: Any) -> None:
    [reply] = run_plugin(
        SetField("CPU_LIMIT HostConfig.NanoCpus cpus"), Message("container.create", body)
    )
    assert reply == passthrough()


def test_a_name_prefix_of_another_var_does_not_match() -> None:
    [reply] = run_plugin(
        SetField("CPU X int"), Message("container.create", {"Env": ["CPU_LIMIT=2"]})
    )
    assert reply == passthrough()


def test_strip_removes_the_env_var_after_applying_it() -> None:
    body = body_after(SetField("--strip N X int"), {"Env": ["A=1", "N=1", "N=2"]})
    assert body == {"Env": ["A=1"], "X": 2}


@pytest.mark.parametrize(
    ("kind", "raw", "complaint"),
    [
        ("int", "1.5", "not a decimal integer"),
        ("bool", "maybe", "not a boolean"),
        ("bytes-size", "12q", "not a size"),
        ("bytes-size", "0.3", "not a whole number of bytes"),
        ("cpus", "two", "not a CPU count"),
        ("cpus", "-1", "not a CPU count"),
        ("cpus", "NaN", "not a CPU count"),
        ("cpus", "0.0000000001", "more precise than one nano-CPU"),
    ],
)
def test_an_unconvertible_value_is_an_error_naming_the_env_var_and_value(
    kind: str, raw: str, complaint: str
) -> None:
    [reply] = run_plugin(
        SetField(f"LIMIT Out {kind}"), Message("container.create", {"Env": [f"LIMIT={raw}"]})
    )
    assert reply.verdict is Verdict.ERROR
    assert reply.reason.startswith(f"env LIMIT={raw!r} is not a valid {kind}: ")
    assert complaint in reply.reason


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("text", "body must be a map, got str"),
        ({"Env": "N=1"}, "Env must be a list of 'NAME=value' strings"),
        ({"Env": [1]}, "Env must be a list of 'NAME=value' strings"),
        ({"Env": ["N=1"], "HostConfig": []}, "cannot set HostConfig.Memory: HostConfig is a list"),
    ],
)
def test_a_malformed_body_is_an_error_reply_saying_so(body: Any, complaint: str) -> None:
    [reply] = run_plugin(SetField("N HostConfig.Memory int"), Message("container.create", body))
    assert reply.verdict is Verdict.ERROR
    assert complaint in reply.reason


def test_a_non_map_deeper_in_the_path_is_named_with_its_full_path() -> None:
    [reply] = run_plugin(
        SetField("N A.B.C int"), Message("container.create", {"Env": ["N=1"], "A": {"B": 3}})
    )
    assert reply.reason == "cannot set A.B.C: A.B is a int, not a map"


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        ("", "expected 'ENV_VAR FIELD.PATH [TYPE] [--strip]'"),
        ("CPU", "expected 'ENV_VAR FIELD.PATH"),
        ("A B int extra", "expected 'ENV_VAR FIELD.PATH"),
        ("CPU HostConfig.NanoCpus float", "unknown type 'float' (known: str, int, bool"),
        ("CPU HostConfig..NanoCpus", "has an empty part"),
        ("A=B X", "env var name 'A=B' contains '='"),
        ("A X --remove", "unknown flag '--remove' (known: --strip)"),
    ],
)
def test_an_invalid_option_is_an_option_error(option: str, complaint: str) -> None:
    with pytest.raises(OptionError) as caught:
        SetField(option)
    assert str(caught.value).startswith(f"plugin 'set-field': bad option {option!r}: ")
    assert complaint in str(caught.value)


_units = st.sampled_from([("", 0), ("k", 1), ("M", 2), ("g", 3), ("T", 4), ("p", 5)])


@settings(max_examples=100)
@given(number=st.integers(0, 10**6), unit=_units, suffix=st.sampled_from(["", "b", "B", "iB"]))
def test_bytes_size_is_the_number_times_its_binary_unit(
    number: int, unit: tuple[str, int], suffix: str
) -> None:
    letter, power = unit
    assert parse_bytes_size(f"{number}{letter}{suffix}") == number * 1024**power


@settings(max_examples=100)
@given(st.decimals(min_value=0, max_value=1024, places=9, allow_nan=False, allow_infinity=False))
def test_cpus_are_nano_cpus_exactly(cpus: Decimal) -> None:
    assert parse_cpus(str(cpus)) == int(cpus * 1_000_000_000)


_env = st.lists(st.sampled_from(["A=1", "N=3", "N=4", "OTHER=x", "N=", "NAME=5"]), max_size=5)


@settings(max_examples=100, deadline=None)
@given(env=_env, strip=st.booleans(), memory=st.one_of(st.none(), st.integers(0, 9)))
def test_applying_twice_equals_applying_once_and_never_mutates_the_input(
    env: list[str], strip: bool, memory: int | None
) -> None:
    plugin = SetField("N HostConfig.Memory str" + (" --strip" if strip else ""))
    body: dict[str, Any] = {"Env": env, "HostConfig": {} if memory is None else {"Memory": memory}}
    original = copy.deepcopy(body)

    once = body_after(plugin, body)
    twice = body_after(plugin, once)

    assert body == original
    assert twice == once
    values = [e[2:] for e in env if e.startswith("N=")]
    expected_memory = values[-1] if values else memory
    assert once["HostConfig"].get("Memory") == expected_memory
