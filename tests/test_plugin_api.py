"""The plugin API: class validation, dispatch, reply normalisation, options and naming."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import (
    Message,
    OnError,
    OptionError,
    Plugin,
    PluginDefinitionError,
    PluginInfoError,
    Reply,
    Verdict,
    drop,
    emit,
    handles,
    passthrough,
    replace,
    split_option,
)


class Echo(Plugin):
    """A small plugin used across these tests."""

    name = "echo"
    version = "2.1"
    priority = 5
    on_error = OnError.SKIP

    @handles("container.create")
    def create(self, msg: Message) -> Message:
        return Message("container.create", {"seen": msg.body}, id=msg.id)

    @handles("container.*", "image.pull")
    async def other(self, msg: Message) -> None:
        return None


# --- info ---------------------------------------------------------------------------


def test_info_reports_class_attributes_and_handler_patterns_in_declaration_order() -> None:
    info = Echo().info()
    assert info.name == "echo"
    assert info.accepts == ("container.create", "container.*", "image.pull")
    assert (info.version, info.priority, info.on_error) == ("2.1", 5, OnError.SKIP)


def test_a_string_on_error_class_attribute_becomes_the_enum() -> None:
    class Retrying(Plugin):
        name = "retrying"
        on_error = "retry"  # type: ignore[assignment]

        @handles("a")
        def a(self, msg: Message) -> None: ...

    assert Retrying().info().on_error is OnError.RETRY


def test_name_keyword_overrides_the_class_name_so_two_instances_coexist() -> None:
    first, second = Echo(), Echo(name="echo-2")
    assert (first.info().name, second.info().name) == ("echo", "echo-2")
    assert second.log.name == "chanrouter.plugin.echo-2"
    assert Echo.name == "echo"


@pytest.mark.parametrize("bad", ["", "two words", "tab\there"])
def test_an_invalid_instance_name_is_rejected_at_construction(bad: str) -> None:
    with pytest.raises(PluginInfoError, match="name must be a non-empty string"):
        Echo(name=bad)


def test_an_instance_may_narrow_what_it_accepts() -> None:
    class Narrow(Plugin):
        name = "narrow"

        @handles("*")
        def any(self, msg: Message) -> None: ...

        def accepts(self) -> tuple[str, ...]:
            return ("volume.*",)

    assert Narrow().info().accepts == ("volume.*",)


def test_an_instance_that_accepts_nothing_is_rejected_at_construction() -> None:
    class Empty(Plugin):
        name = "empty"

        @handles("*")
        def any(self, msg: Message) -> None: ...

        def accepts(self) -> tuple[str, ...]:
            return ()

    with pytest.raises(PluginInfoError, match="'empty': accepts no message types"):
        Empty()


# --- class validation ----------------------------------------------------------------


def test_a_class_without_handlers_is_rejected_naming_the_class() -> None:
    with pytest.raises(PluginDefinitionError, match="NoHandlers declares no handlers"):

        class NoHandlers(Plugin):
            name = "nothing"


def test_an_abstract_base_may_have_no_handlers_but_cannot_be_instantiated() -> None:
    class Base(Plugin, abstract=True):
        version = "9"

    class Concrete(Base):
        name = "concrete"

        @handles("a")
        def a(self, msg: Message) -> None: ...

    assert Concrete().info().version == "9"
    with pytest.raises(PluginDefinitionError, match="Base is abstract"):
        Base()
    with pytest.raises(PluginDefinitionError, match="Plugin is abstract"):
        Plugin()


@pytest.mark.parametrize("bad_name", ["", "has space"])
def test_a_class_with_an_invalid_name_is_rejected(bad_name: str) -> None:
    with pytest.raises(PluginDefinitionError, match=r"plugin class .*\.Named: .*name must be"):

        class Named(Plugin):
            name = bad_name

            @handles("a")
            def a(self, msg: Message) -> None: ...


@pytest.mark.parametrize(
    ("attribute", "value", "complaint"),
    [
        ("concurrency", 0, "concurrency must be >= 1"),
        ("timeout", -1.0, "timeout must be > 0"),
        ("max_attempts", 0, "max_attempts must be >= 1"),
        ("on_error", "explode", "on_error must be one of"),
        ("priority", "high", "priority must be an integer"),
    ],
)
def test_invalid_class_attributes_are_rejected_at_class_creation(
    attribute: str, value: object, complaint: str
) -> None:
    namespace: dict[str, Any] = {"name": "bad", attribute: value}
    namespace["a"] = handles("a")(lambda self, msg: None)
    with pytest.raises(PluginDefinitionError, match=f"plugin class .*Bad: .*{complaint}"):
        type("Bad", (Plugin,), namespace)


def test_a_handler_with_the_wrong_arity_is_rejected_naming_class_and_method() -> None:
    with pytest.raises(
        PluginDefinitionError, match=r"Arity, method no_msg\(self\): a handler must take exactly"
    ):

        class Arity(Plugin):
            name = "arity"

            @handles("a")
            def no_msg(self) -> None: ...


def test_a_handler_with_a_required_extra_argument_is_rejected() -> None:
    with pytest.raises(
        PluginDefinitionError, match=r"method extra\(self, msg, more\): .*exactly \(self, msg\)"
    ):

        class Extra(Plugin):
            name = "extra"

            @handles("a")
            def extra(self, msg: Message, more: int) -> None: ...


def test_a_handler_with_optional_extra_arguments_is_accepted() -> None:
    class Optional(Plugin):
        name = "optional"

        @handles("a")
        def a(self, msg: Message, more: int = 0) -> None: ...

    assert Optional().info().accepts == ("a",)


def test_the_same_pattern_on_two_handlers_is_rejected_naming_both() -> None:
    with pytest.raises(
        PluginDefinitionError,
        match=r"method second: pattern 'a\.b' is already handled by method first",
    ):

        class Twice(Plugin):
            name = "twice"

            @handles("a.b")
            def first(self, msg: Message) -> None: ...

            @handles("c", "a.b")
            def second(self, msg: Message) -> None: ...


def test_a_marker_on_a_non_function_is_rejected_naming_class_and_attribute() -> None:
    with pytest.raises(PluginDefinitionError, match=r"Static, method s: .*not a staticmethod"):

        class Static(Plugin):
            name = "static"

            @handles("a")
            @staticmethod
            def s(msg: Message) -> None: ...


def test_a_generator_handler_is_rejected() -> None:
    with pytest.raises(PluginDefinitionError, match=r"method gen: .*not yield"):

        class Gen(Plugin):
            name = "gen"

            @handles("a")
            def gen(self, msg: Message) -> Any:
                yield msg


@pytest.mark.parametrize("patterns", [(), ("",), ("two words",)])
def test_an_invalid_marker_is_rejected_when_applied(patterns: tuple[str, ...]) -> None:
    with pytest.raises(PluginDefinitionError, match="@handles"):
        handles(*patterns)


def test_stacked_markers_accumulate_patterns() -> None:
    class Stacked(Plugin):
        name = "stacked"

        @handles("a")
        @handles("b", "c")
        def h(self, msg: Message) -> None: ...

    assert Stacked().info().accepts == ("a", "b", "c")


def test_a_subclass_inherits_handlers_and_an_override_keeps_its_place() -> None:
    class Child(Echo):
        name = "child"

        @handles("container.create")
        def create(self, msg: Message) -> Message:
            return msg.derive("audit.create")

        @handles("volume.create")
        def volume(self, msg: Message) -> None: ...

    assert Child().info().accepts == (
        "container.create",
        "container.*",
        "image.pull",
        "volume.create",
    )
    reply = trio.run(Child().handle, Message("container.create"))
    assert [m.type for m in reply.messages] == ["audit.create"]


def test_an_unmarked_override_stops_being_a_handler() -> None:
    class Quiet(Echo):
        name = "quiet"

        def create(self, msg: Message) -> Message:
            return msg

    assert Quiet().info().accepts == ("container.*", "image.pull")


# --- dispatch ------------------------------------------------------------------------


class Router(Plugin):
    """Records which handler ran."""

    name = "router"

    @handles("a.*")
    def glob_a(self, msg: Message) -> Reply:
        return drop("glob_a")

    @handles("*")
    def catch_all(self, msg: Message) -> Reply:
        return drop("catch_all")

    @handles("a.exact")
    def exact(self, msg: Message) -> Reply:
        return drop("exact")


@pytest.mark.parametrize(
    ("message_type", "handler"),
    [("a.exact", "exact"), ("a.other", "glob_a"), ("a.b.c", "glob_a"), ("b", "catch_all")],
)
async def test_exact_patterns_win_over_globs_then_declaration_order(
    message_type: str, handler: str
) -> None:
    reply = await Router().handle(Message(message_type))
    assert reply.reason == handler


async def test_a_type_no_handler_matches_passes_through() -> None:
    reply = await Echo().handle(Message("network.connect", {"x": 1}))
    assert reply == passthrough()


_segments = st.sampled_from(["a", "b", "c"])
_types = st.lists(_segments, min_size=1, max_size=3).map(".".join)
_globs = st.one_of(
    st.just("*"),
    _segments.map(lambda s: f"{s}.*"),
    st.tuples(_segments, _segments).map(lambda t: f"{t[0]}.?{t[1][1:]}*"),
)


@settings(max_examples=100, deadline=None)
@given(
    patterns=st.lists(st.one_of(_types, _globs), min_size=1, max_size=6, unique=True),
    message_type=_types,
)
def test_dispatch_picks_the_exact_handler_else_the_first_matching_glob(
    patterns: list[str], message_type: str
) -> None:
    from fnmatch import fnmatchcase

    namespace: dict[str, Any] = {"name": "generated"}
    for index, pattern in enumerate(patterns):
        namespace[f"h{index}"] = handles(pattern)(lambda self, msg, index=index: drop(str(index)))
    plugin = type("Generated", (Plugin,), namespace)()
    reply: Reply = trio.run(plugin.handle, Message(message_type))

    exact = [i for i, p in enumerate(patterns) if p == message_type and "*" not in p]
    globbed = [i for i, p in enumerate(patterns) if "*" in p and fnmatchcase(message_type, p)]
    if exact or globbed:
        assert reply.reason == str((exact or globbed)[0])
    else:
        assert reply == passthrough()


# --- return values and errors --------------------------------------------------------


class Returns(Plugin):
    """Returns whatever the message body says."""

    name = "returns"

    @handles("sync")
    def sync(self, msg: Message) -> Any:
        return msg.body

    @handles("async")
    async def asynchronous(self, msg: Message) -> Any:
        await trio.lowlevel.checkpoint()
        return msg.body


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_none_means_passthrough(kind: str) -> None:
    assert await Returns().handle(Message(kind, None)) == passthrough()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_message_is_emitted(kind: str) -> None:
    out = Message("x")
    assert await Returns().handle(Message(kind, out)) == emit(out)


@pytest.mark.parametrize("container", [list, tuple])
async def test_a_list_or_tuple_of_messages_is_emitted_in_order(container: type) -> None:
    outs = [Message("x"), Message("y"), Message("x")]
    reply = await Returns().handle(Message("sync", container(outs)))
    assert reply == emit(*outs)


async def test_a_reply_is_returned_as_is() -> None:
    given_reply = drop("no", also=[Message("audit")])
    assert await Returns().handle(Message("async", given_reply)) is given_reply


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"type": "x"}, "returned dict {'type': 'x'}"),
        ("text", "returned str 'text'"),
        (True, "returned bool True"),
        ([Message("x"), 3], "returned a list whose item 1 is int 3"),
        (Reply(messages=("x",)), "returned a Reply holding str 'x'"),  # type: ignore[arg-type]
    ],
)
async def test_a_bad_return_value_becomes_an_error_reply_saying_what_was_returned(
    value: object, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await Returns().handle(Message("sync", value))
    assert reply.verdict is Verdict.ERROR
    assert "handler Returns.sync" in reply.reason and says in reply.reason
    assert any(says in r.getMessage() for r in caplog.records)


class Raises(Plugin):
    """Raises the exception in the message body."""

    name = "raises"

    @handles("sync")
    def sync(self, msg: Message) -> None:
        raise msg.body

    @handles("async")
    async def asynchronous(self, msg: Message) -> None:
        await trio.lowlevel.checkpoint()
        raise msg.body

    @handles("forever")
    async def forever(self, msg: Message) -> None:
        await trio.sleep_forever()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_handler_exception_becomes_an_error_reply_and_is_logged_with_traceback(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await Raises().handle(Message(kind, KeyError("missing")))
    assert reply == Reply(Verdict.ERROR, (), "KeyError: 'missing'")
    [record] = [r for r in caplog.records if r.name == "chanrouter.plugin.raises"]
    assert record.levelno == logging.ERROR and record.exc_info is not None


@settings(max_examples=50, deadline=None)
@given(
    exc_type=st.sampled_from([ValueError, RuntimeError, KeyError, ZeroDivisionError, OSError]),
    text=st.text(max_size=20),
    kind=st.sampled_from(["sync", "async"]),
)
def test_handle_never_raises_for_an_ordinary_exception(
    exc_type: type[Exception], text: str, kind: str
) -> None:
    reply = trio.run(Raises().handle, Message(kind, exc_type(text)))
    assert reply.verdict is Verdict.ERROR
    assert reply.reason.startswith(f"{exc_type.__name__}: ")


async def test_cancellation_is_not_swallowed() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await Raises().handle(Message("forever"))
    assert scope.cancelled_caught


# --- options -------------------------------------------------------------------------


class Configured(Plugin):
    """Takes one integer option."""

    name = "configured"

    def configure(self, option: str) -> None:
        words = split_option(option)
        if len(words) != 1:
            raise OptionError("expected one number")
        self.number = int(words[0])

    @handles("a")
    def a(self, msg: Message) -> None: ...


def test_the_option_is_stored_and_configure_sees_it() -> None:
    plugin = Configured("42")
    assert (plugin.option, plugin.number) == ("42", 42)


def test_an_option_error_names_the_plugin_and_the_option() -> None:
    with pytest.raises(OptionError) as caught:
        Configured("1 2", name="conf-2")
    assert str(caught.value) == "plugin 'conf-2': bad option '1 2': expected one number"
    assert (caught.value.plugin, caught.value.option) == ("conf-2", "1 2")


def test_a_value_error_in_configure_becomes_an_option_error() -> None:
    with pytest.raises(OptionError, match="plugin 'configured': bad option 'x': invalid literal"):
        Configured("x")


def test_a_plugin_without_configure_rejects_a_non_empty_option() -> None:
    Echo("  ")
    with pytest.raises(
        OptionError, match="plugin 'echo': bad option 'x': this plugin takes no option"
    ):
        Echo("x")


def test_unbalanced_quotes_are_an_option_error() -> None:
    with pytest.raises(OptionError, match="cannot split into words"):
        split_option("'open")


@settings(max_examples=100)
@given(st.lists(st.text(min_size=1, max_size=8), max_size=5))
def test_split_option_undoes_shell_quoting(words: list[str]) -> None:
    import shlex

    assert split_option(shlex.join(words)) == words


# --- hooks ---------------------------------------------------------------------------


async def test_default_start_and_stop_hooks_do_nothing() -> None:
    plugin = Echo()
    await plugin.start()
    await plugin.stop()
    assert await plugin.handle(Message("image.pull")) == passthrough()


_messages = st.builds(
    Message, type=st.sampled_from(["sync", "x", "y.z"]), body=st.integers() | st.none()
)


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(_messages, max_size=4),
    container=st.sampled_from([list, tuple]),
    kind=st.sampled_from(["sync", "async"]),
)
def test_any_sequence_of_messages_is_emitted_exactly_in_order(
    messages: list[Message], container: type, kind: str
) -> None:
    reply = trio.run(Returns().handle, Message(kind, container(messages)))
    assert reply.verdict is Verdict.CONTINUE
    assert reply.messages == tuple(messages)
    assert all(out is given_ for out, given_ in zip(reply.messages, messages, strict=True))


def test_a_reply_is_a_frozen_value_with_defaults_keywords_and_replace() -> None:
    message = Message("t", 1, id="m")
    reply = Reply(Verdict.CONTINUE, (message,))
    assert reply == Reply(messages=(message,)) == replace(message)
    assert hash(drop("x")) == hash(Reply(Verdict.DROP, reason="x"))
    assert Reply() == passthrough() and Reply().reason == ""
    assert dataclasses.replace(reply, reason="why").reason == "why"
    assert [f.name for f in dataclasses.fields(Reply)] == ["verdict", "messages", "reason"]
    assert repr(Reply()) == "Reply(verdict=<Verdict.CONTINUE: 'continue'>, messages=(), reason='')"
    assert pickle.loads(pickle.dumps(reply)) == reply
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.reason = "changed"  # type: ignore[misc]
    match drop("no"):
        case Reply(Verdict.DROP, (), reason):
            assert reason == "no"
        case _:
            pytest.fail("a Reply matches positionally on verdict, messages, reason")
