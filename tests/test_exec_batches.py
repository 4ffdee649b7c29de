"""How queued calls are cut into ``call`` requests: small batches, order kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message
from plugin_sdk.app import call_entry
from router.exec._live import _BATCH_BYTES, _batches
from router.exec._table import entry_weight

bodies = st.one_of(st.binary(max_size=40_000), st.text(max_size=100), st.none(), st.just({"a": 1}))


@settings(max_examples=150)
@given(st.lists(bodies, max_size=40))
def test_batches_keep_every_call_in_order_and_stay_small(body_list: list[object]) -> None:
    entries = [call_entry(i + 1, Message("t", body)) for i, body in enumerate(body_list)]
    batches = _batches(entries)
    assert [e for batch in batches for e in batch] == entries
    assert all(batch for batch in batches)
    for batch in batches:
        assert len(batch) == 1 or sum(entry_weight(e) for e in batch) <= _BATCH_BYTES


def test_small_calls_share_one_batch_and_big_ones_go_a_few_at_a_time() -> None:
    small = [call_entry(i + 1, Message("t", b"x" * 60)) for i in range(64)]
    assert len(_batches(small)) == 1
    big = [call_entry(i + 1, Message("t", b"x" * 65536)) for i in range(8)]
    assert [len(batch) for batch in _batches(big)] == [1] * 8
