"""The log builtin: logs what it sees at its level and passes everything on."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, passthrough
from plugin_sdk.testing import run_plugin
from router.builtins.log import BODY_LIMIT, Log, compact

LOGGER = "chanrouter.plugin.log"


def test_each_message_is_logged_with_type_id_and_compact_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    message = Message("container.create", {"Image": "busybox", "Env": ["A=1"]})
    assert run_plugin(Log(), message) == [passthrough()]
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.INFO
    assert (
        record.getMessage() == f'container.create {message.id} {{"Image":"busybox","Env":["A=1"]}}'
    )


@pytest.mark.parametrize(
    ("word", "level"), [("debug", logging.DEBUG), ("WARNING", logging.WARNING)]
)
def test_the_first_word_may_set_the_level(
    word: str, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    run_plugin(Log(word), Message("x"))
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [level]


def test_nothing_is_logged_below_the_logger_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert run_plugin(Log("debug"), Message("x")) == [passthrough()]
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_patterns_narrow_what_the_plugin_is_routed() -> None:
    assert Log().info().accepts == ("*",)
    assert Log("container.* image.pull").info().accepts == ("container.*", "image.pull")
    assert Log("error container.*").level == logging.ERROR


def test_a_named_instance_logs_on_its_own_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    run_plugin(Log(name="audit-log"), Message("x"))
    assert [r.name for r in caplog.records] == ["chanrouter.plugin.audit-log"]


def test_a_level_after_a_pattern_is_an_option_error() -> None:
    with pytest.raises(OptionError, match=r"plugin 'log': bad option 'x\.\* info': the level"):
        Log("x.* info")


def test_non_json_body_values_are_shown_by_repr() -> None:
    assert compact({"b": b"\x00", "t": (1, 2)}) == '{"b":"b\'\\\\x00\'","t":[1,2]}'


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=100)
@given(body=_json)
def test_every_body_passes_unchanged_and_logs_as_one_bounded_line(body: Any) -> None:
    assert run_plugin(Log(), Message("any.type", body)) == [passthrough()]
    text = compact(body)
    assert len(text) <= BODY_LIMIT
    assert "\n" not in text
