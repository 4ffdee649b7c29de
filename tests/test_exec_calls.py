"""Calls to a real subprocess plugin (concurrency, out-of-order replies, verdicts, stop),
and the call table that matches answers to calls by id."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import trio
from exec_helpers import pid_alive, plugin_cmd, running, scripted
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, Reply, Verdict
from plugin_sdk.wire import nesting
from router.exec import ExecHandle, PluginStartError, PluginUnavailable
from router.exec._table import CallTable, NeverMade, entry_weight


async def test_concurrent_calls_are_all_in_flight_in_the_plugin_at_once() -> None:
    # Each "gate" call returns only once 4 are waiting inside the plugin: with fewer
    # handled at once this would never finish.
    async with running(scripted("concurrency=4")) as handle:
        replies: list[Reply] = []

        async def one() -> None:
            replies.append(await handle.call(Message("gate", 4)))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(one)
        assert [r.messages[0].body for r in replies] == [4, 4, 4, 4]


async def test_replies_completing_out_of_order_reach_their_own_callers() -> None:
    async with running(scripted("concurrency=8")) as handle:
        delays = [0.2, 0.0, 0.1, 0.15, 0.05]
        got: dict[str, object] = {}

        async def one(i: int, delay: float) -> None:
            reply = await handle.call(Message("delay", delay, id=f"m{i}"))
            got[reply.messages[0].id] = reply.messages[0].body

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i, delay in enumerate(delays):
                    nursery.start_soon(one, i, delay)
        assert got == {f"m{i}": d for i, d in enumerate(delays)}


async def test_a_drop_verdict_and_its_reason_cross_the_process_boundary() -> None:
    async with running(scripted()) as handle:
        reply = await handle.call(Message("drop", "not today"))
    assert reply == Reply(Verdict.DROP, (), "not today")


async def test_a_type_the_plugin_has_no_handler_for_passes() -> None:
    async with running(scripted()) as handle:
        reply = await handle.call(Message("unheard.of", 1))
    assert reply == Reply()


async def test_stop_lets_calls_in_flight_finish_runs_the_stop_hook_and_exits(
    tmp_path: Path,
) -> None:
    note = tmp_path / "note"
    handle = scripted(f"stop-note={note} concurrency=2")
    await handle.start()
    pid = handle.pid
    assert pid is not None
    replies: list[Reply] = []

    async def slow_call() -> None:
        replies.append(await handle.call(Message("delay", 0.3)))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_call)
            await trio.sleep(0.05)  # a real process: give the call time to be sent
            await handle.stop()
    assert replies and replies[0].messages[0].body == 0.3
    assert note.read_text() == "stopped"
    assert not pid_alive(pid)
    assert handle.status()["state"] == "stopped"


async def test_calls_after_stop_are_refused_at_once() -> None:
    handle = scripted()
    async with running(handle):
        pass
    with pytest.raises(PluginUnavailable, match="stopped"):
        await handle.call(Message("echo", 1))


async def test_a_plugin_ignoring_fd3_eof_is_terminated_after_the_grace_period() -> None:
    # silent.py never handshakes; stop it while start() still waits for it.
    handle = ExecHandle(
        plugin_cmd("silent.py"), handshake_timeout=30, stop_timeout=0.2, kill_timeout=0.2
    )
    pids: list[int] = []

    async def stop_once_spawned() -> None:
        while handle.pid is None:
            await trio.sleep(0.005)
        pids.append(handle.pid)
        await handle.stop()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_once_spawned)
            with pytest.raises(PluginStartError, match="stopped before its handshake"):
                await handle.start()
    assert handle.status()["state"] == "stopped"
    assert not pid_alive(pids[0])


# -- the call table (pure): ids, concurrency, answers in any order, deadlines ----------


@settings(max_examples=150)
@given(st.integers(1, 4), st.booleans(), st.data())
def test_the_call_table_completes_every_call_once_within_the_plugins_concurrency(
    concurrency: int, cancels: bool, data: st.DataObject
) -> None:
    table: CallTable[str] = CallTable(concurrency, cancels=cancels)
    now = 0.0
    deadlines: dict[str, float] = {}
    waited: dict[int, str] = {}  # call id -> key, while the caller waits
    at_plugin: list[int] = []  # sent, not answered (given up or not)
    ended: list[str] = []
    sent_ids: list[int] = []
    answered: list[int] = []
    given_up_at: dict[int, float] = {}  # committed calls given up on, unanswered
    last_starved = -math.inf  # when a call last gave up waiting in the backlog
    to_cancel: list[int] = []  # committed calls given up on, not yet handed to a cancel
    cancelled: list[int] = []  # handed to a cancel request

    def gave_up(call_id: int) -> None:
        nonlocal last_starved
        if call_id in at_plugin or call_id in [entry[0] for entry in table.outbox]:
            given_up_at[call_id] = now
            if cancels:
                to_cancel.append(call_id)
        else:
            last_starved = now

    ops = ["add", "flush", "answer", "give_up", "tick", "bogus", "cancel"]
    for step in range(data.draw(st.integers(0, 40))):
        op = data.draw(st.sampled_from(ops))
        if op == "add":
            key = f"c{step}"
            expires = data.draw(st.sampled_from([math.inf, now + 1, now + 5]))
            body = data.draw(st.sampled_from([step, b"x" * step, "y" * step, [[step]]]))
            headers: dict[str, Any] = data.draw(
                st.sampled_from([{}, {"trace": "t"}, {"lineage": [["t", "p"]]}])
            )
            call_id = table.add(Message("t", body, headers=headers), key, expires)
            waited[call_id] = key
            deadlines[key] = expires
        elif op == "flush":
            entries = table.take()
            table.sent(entries)
            ids = [entry[0] for entry in entries]
            assert ids == sorted(ids) and (not sent_ids or not ids or ids[0] > sent_ids[-1])
            sent_ids += ids
            at_plugin += ids
        elif op == "answer" and at_plugin:
            chosen = data.draw(st.lists(st.sampled_from(at_plugin), unique=True, min_size=1))
            for call_id in data.draw(st.permutations(chosen)):
                at_plugin.remove(call_id)
                answered.append(call_id)
                given_up_at.pop(call_id, None)
                got = table.resolve(call_id)
                assert got == waited.pop(call_id, None)
                if got is not None:
                    ended.append(got)
            if answered:  # an answer that comes twice is ignored
                assert table.resolve(data.draw(st.sampled_from(answered))) is None
        elif op == "give_up" and waited:
            call_id = data.draw(st.sampled_from(sorted(waited)))
            gave_up(call_id)
            assert table.give_up(call_id, now) == waited.pop(call_id)
            ended.append(f"gave up {call_id}")
        elif op == "tick":
            now += data.draw(st.sampled_from([0.5, 1.0, 5.0]))
            due = {k for i, k in waited.items() if deadlines[k] <= now}
            for call_id in [i for i, k in waited.items() if k in due]:
                gave_up(call_id)
            expired = table.expire(now)
            assert sorted(expired) == sorted(due)
            waited = {i: k for i, k in waited.items() if k not in due}
            ended += expired
            assert table.next_deadline() == min(
                (deadlines[k] for k in waited.values()), default=math.inf
            )
        elif op == "bogus":
            with pytest.raises(NeverMade, match="which was never made"):
                table.resolve(table.sent_max + data.draw(st.integers(1, 3)))
        elif op == "cancel":
            # Only calls given up, unanswered, and sent: a cancel never overtakes its call.
            cancellable = [c for c in to_cancel if c in given_up_at and c in sent_ids]
            assert table.cancels_ready == bool(cancellable)
            assert table.take_cancels() == cancellable
            to_cancel = [c for c in to_cancel if c in given_up_at and c not in sent_ids]
            cancelled += cancellable
        assert len(at_plugin) + len(table.outbox) <= concurrency
        assert table.outbox_weight == sum(entry_weight(entry) for entry in table.outbox)
        # What a batch of the outbox is said to nest, without a walk.
        assert table.outbox_nesting == max((nesting(entry[1]) for entry in table.outbox), default=0)
        assert table.unanswered == len(at_plugin) + len(table.outbox)
        # Wedged: every place held by a call given up on, and a call starved in the
        # backlog at least the grace period (1.0) after the newest of them was given up.
        committed = at_plugin + [entry[0] for entry in table.outbox]
        assert table.wedged(1.0) == (
            len(committed) >= concurrency
            and all(c in given_up_at for c in committed)
            and last_starved >= max(given_up_at[c] for c in committed) + 1.0
        )
    # A plugin that answers everything it gets lets every waiting call through.
    for _ in range(len(waited) + 1):
        entries = table.take()
        table.sent(entries)
        for call_id in at_plugin + [entry[0] for entry in entries]:
            got = table.resolve(call_id)
            assert got == waited.pop(call_id, None)
            if got is not None:
                ended.append(got)
        at_plugin = []
    assert not waited and not table.pending
    assert table.clear() == []
    assert len(ended) == len(set(ended))
    assert len(cancelled) == len(set(cancelled)) and (cancels or not cancelled)


def test_a_call_given_up_is_cancelled_once_it_went_out_and_only_if_still_unanswered() -> None:
    table: CallTable[str] = CallTable(2, cancels=True)
    sent = table.add(Message("t"), "sent")
    table.sent(table.take())
    queued = table.add(Message("t"), "in the outbox")
    table.give_up(sent, 1.0)
    table.give_up(queued, 1.0)
    assert table.take_cancels() == [sent]  # the other one's call has not gone out yet
    table.sent(table.take())
    assert table.cancels_ready
    assert table.resolve(queued) is None  # answered before its cancel went: none needed
    assert not table.cancels_ready and table.take_cancels() == []
    assert table.unanswered == 1  # the cancelled call holds its place until answered
    table.resolve(sent)
    assert table.unanswered == 0


def test_a_plugin_without_the_feature_gets_no_cancels() -> None:
    table: CallTable[str] = CallTable(1)
    call_id = table.add(Message("t"), "sent")
    table.sent(table.take())
    table.give_up(call_id, 1.0)
    assert not table.cancels_ready and table.take_cancels() == []


def test_a_call_given_up_in_the_backlog_is_never_sent() -> None:
    table: CallTable[str] = CallTable(1)
    first = table.add(Message("t"), "first")
    queued = table.add(Message("t"), "queued")
    last = table.add(Message("t"), "last")
    table.sent(table.take())
    assert table.give_up(queued, 0.0) == "queued"
    assert table.resolve(first) == "first"
    assert [entry[0] for entry in table.take()] == [last]


def test_clearing_the_call_table_returns_every_call_still_waited_for() -> None:
    table: CallTable[str] = CallTable(1)
    table.add(Message("t"), "sent")
    table.sent(table.take())
    table.add(Message("t"), "queued", expires=3.0)
    assert sorted(table.clear()) == ["queued", "sent"]
    assert table.next_deadline() == math.inf
    assert table.unanswered == 0
