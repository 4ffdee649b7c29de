"""plugin_sdk.testing, in process: the harness runs hooks and checks the plugin contract."""

from __future__ import annotations

import pytest

from plugin_sdk import Message, Plugin, Reply, Verdict, drop, handles, passthrough
from plugin_sdk.testing import NotAcceptedError, PluginContractError, PluginHarness, run_plugin


class Counter(Plugin):
    """Counts messages between its start and stop hooks, recording the hook calls."""

    name = "counter"

    def configure(self, option: str) -> None:
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    @handles("count.*")
    def count(self, msg: Message) -> Message:
        self.events.append(msg.type)
        return Message(msg.type, len(self.events), id=msg.id)


async def test_the_harness_runs_start_then_messages_then_stop() -> None:
    plugin = Counter()
    async with PluginHarness(plugin) as harness:
        assert plugin.events == ["start"]
        await harness.send(Message("count.a"))
        await harness.send("count.b", {"body": 1})
    assert plugin.events == ["start", "count.a", "count.b", "stop"]


async def test_the_harness_runs_stop_even_when_the_test_body_fails() -> None:
    plugin = Counter()
    with pytest.raises(ZeroDivisionError):
        async with PluginHarness(plugin):
            _ = 1 / 0
    assert plugin.events == ["start", "stop"]


async def test_send_builds_a_message_from_a_type_and_body() -> None:
    async with PluginHarness(Counter()) as harness:
        reply = await harness.send("count.x", {"k": "v"})
    assert reply.verdict is Verdict.CONTINUE
    assert [m.type for m in reply.messages] == ["count.x"]


async def test_sending_a_type_the_plugin_does_not_accept_is_refused_when_strict() -> None:
    async with PluginHarness(Counter()) as harness:
        with pytest.raises(
            NotAcceptedError, match=r"'counter' does not accept 'other' .*count\.\*"
        ):
            await harness.send("other")


async def test_a_lenient_harness_hands_over_any_type_and_unmatched_types_pass() -> None:
    async with PluginHarness(Counter(), strict=False) as harness:
        assert await harness.send("other") == passthrough()


async def test_sending_outside_the_context_is_an_error() -> None:
    harness = PluginHarness(Counter())
    with pytest.raises(RuntimeError, match="not running"):
        await harness.send("count.a")


class BrokenHandle(Plugin):
    """Overrides handle and breaks the contract in the way its option says."""

    name = "broken"

    def configure(self, option: str) -> None:
        self.mode = option

    @handles("x")
    def x(self, msg: Message) -> None: ...

    async def handle(self, message: Message) -> Reply:
        if self.mode == "raise":
            raise RuntimeError("boom")
        return "not a reply"  # type: ignore[return-value]


async def test_the_harness_reports_a_handle_that_raises() -> None:
    async with PluginHarness(BrokenHandle("raise")) as harness:
        with pytest.raises(PluginContractError, match="handle\\(\\) raised RuntimeError: boom"):
            await harness.send("x")


async def test_the_harness_reports_a_handle_that_returns_a_non_reply() -> None:
    async with PluginHarness(BrokenHandle("return")) as harness:
        with pytest.raises(PluginContractError, match="returned str 'not a reply', not a Reply"):
            await harness.send("x")


def test_run_plugin_returns_one_reply_per_message_in_order_and_runs_hooks() -> None:
    plugin = Counter()
    replies = run_plugin(plugin, Message("count.a"), Message("count.b"))
    assert [r.messages[0].body for r in replies] == [2, 3]
    assert plugin.events == ["start", "count.a", "count.b", "stop"]


def test_run_plugin_with_no_messages_still_runs_the_hooks() -> None:
    plugin = Counter()
    assert run_plugin(plugin) == []
    assert plugin.events == ["start", "stop"]


def test_run_plugin_is_strict_by_default() -> None:
    class Denier(Plugin):
        name = "denier"

        @handles("a")
        def a(self, msg: Message) -> Reply:
            return drop("no")

    assert run_plugin(Denier(), Message("a")) == [drop("no")]
    with pytest.raises(NotAcceptedError):
        run_plugin(Denier(), Message("b"))
    assert run_plugin(Denier(), Message("b"), strict=False) == [passthrough()]
