"""The atheris harness (fuzz/fuzz_wire.py) works without atheris, and its property holds
for hypothesis' inputs: only RemoteProtocolError ever escapes the decoder.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk.wire import Connection, GoAwayReceived, Role

HARNESS = Path(__file__).parent.parent / "fuzz" / "fuzz_wire.py"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_wire", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_wire", module)
    spec.loader.exec_module(module)
    return module


fuzz_wire = _load_harness()
SEEDS: list[bytes] = fuzz_wire.seed_corpus()


def test_the_harness_imports_without_atheris_and_its_seeds_are_whole_valid_sessions() -> None:
    assert "atheris" not in sys.modules
    whole = [seed for seed in SEEDS if seed[0] & 2 == 0]
    assert whole
    for seed in whole:
        role = Role.INITIATOR if seed[0] & 1 else Role.RESPONDER
        conn = Connection(role)
        conn.hello()
        events = conn.receive_data(seed[1:]) + conn.receive_data(b"")
        assert any(isinstance(e, GoAwayReceived) for e in events)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_input_only_ever_raises_remote_protocol_errors(data: bytes) -> None:
    fuzz_wire.one_input(data)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 300),
)
def test_mutated_valid_sessions_only_ever_raise_remote_protocol_errors(
    seed: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed[: max(cut, 1)] if cut < len(seed) else seed)
    for where, value in flips:
        data[where % len(data)] = value
    fuzz_wire.one_input(bytes(data))


def test_a_fixed_random_walk_over_mutations_stays_within_the_contract() -> None:
    # Cheap breadth hypothesis does not give: 3,000 seeded mutations, the same every run.
    rng = random.Random(2026)
    for _ in range(3_000):
        data = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        fuzz_wire.one_input(bytes(data))
