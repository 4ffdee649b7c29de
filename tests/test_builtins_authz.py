"""The authz builtin: rule parsing, first-match-wins, fail-closed, field conditions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, Reply, Verdict, passthrough
from plugin_sdk.testing import run_plugin
from router.builtins.authz import Authz, parse_rules

SEED_RULES = (
    "deny container.create Image=untrusted/*; deny container.* HostConfig.Privileged=true; allow *"
)


def verdict(rules: str, message_type: str, body: Any = None) -> Reply:
    [reply] = run_plugin(Authz(rules), Message(message_type, body))
    return reply


def test_an_allowed_message_passes_unchanged() -> None:
    assert verdict(SEED_RULES, "container.create", {"Image": "busybox"}) == passthrough()


def test_a_denied_message_is_dropped_with_a_reason_naming_the_rule() -> None:
    reply = verdict(SEED_RULES, "container.create", {"Image": "untrusted/miner"})
    assert reply.verdict is Verdict.DROP
    assert reply.reason == "denied by authz rule 1: deny container.create Image=untrusted/*"
    assert reply.messages == ()


def test_a_boolean_field_compares_as_true_or_false() -> None:
    privileged = {"Image": "busybox", "HostConfig": {"Privileged": True}}
    assert "rule 2" in verdict(SEED_RULES, "container.start", privileged).reason
    unprivileged = {"HostConfig": {"Privileged": False}}
    assert verdict(SEED_RULES, "container.start", unprivileged) == passthrough()


def test_the_first_matching_rule_wins() -> None:
    rules = "allow container.create Image=untrusted/ok; deny container.create Image=untrusted/*"
    assert verdict(rules, "container.create", {"Image": "untrusted/ok"}) == passthrough()
    assert verdict(rules, "container.create", {"Image": "untrusted/x"}).verdict is Verdict.DROP


def test_no_matching_rule_denies_fail_closed() -> None:
    reply = verdict("allow container.create Image=trusted/*", "container.create", {"Image": "x"})
    assert reply.verdict is Verdict.DROP
    assert reply.reason == "denied by authz: no rule matches container.create (fail-closed)"


def test_conditions_in_one_rule_must_all_hold() -> None:
    rules = "deny container.create Image=bad/* HostConfig.Memory=0; allow *"
    both = {"Image": "bad/x", "HostConfig": {"Memory": 0}}
    assert verdict(rules, "container.create", both).verdict is Verdict.DROP
    assert verdict(rules, "container.create", {"Image": "bad/x"}) == passthrough()


@pytest.mark.parametrize(
    ("body", "denied"),
    [
        ({"HostConfig": {"Binds": ["/tmp:/tmp", "/etc:/host-etc"]}}, True),
        ({"HostConfig": {"Binds": ["/tmp:/tmp"]}}, False),
        ({"HostConfig": {"Binds": []}}, False),
        ({"HostConfig": {"Binds": {"/etc": 1}}}, False),
        ({"HostConfig": {}}, False),
        ("not a map", False),
        (None, False),
    ],
)
def test_a_list_field_matches_when_any_item_does_and_missing_or_map_fields_never(
    body: Any, denied: bool
) -> None:
    rules = "deny container.create HostConfig.Binds=/etc:*; allow *"
    reply = verdict(rules, "container.create", body)
    assert (reply.verdict is Verdict.DROP) is denied


@pytest.mark.parametrize(
    ("value", "glob"),
    [(None, "null"), (3, "3"), (1.5, "1.5"), ("ab", "a?"), (False, "false")],
)
def test_scalar_values_compare_as_text(value: object, glob: str) -> None:
    rules = f"deny x Field={glob}; allow x"
    assert verdict(rules, "x", {"Field": value}).verdict is Verdict.DROP


def test_a_decimal_path_part_indexes_a_list() -> None:
    rules = "deny x Cmd.0=sh; allow x"
    assert verdict(rules, "x", {"Cmd": ["sh", "-c"]}).verdict is Verdict.DROP
    assert verdict(rules, "x", {"Cmd": ["bash"]}) == passthrough()
    assert verdict(rules, "x", {"Cmd": []}) == passthrough()


def test_quoted_values_may_hold_semicolons_and_spaces() -> None:
    rules = "deny x 'Label=a; b'; allow x"
    assert verdict(rules, "x", {"Label": "a; b"}).verdict is Verdict.DROP
    assert verdict(rules, "x", {"Label": "a"}) == passthrough()


def test_accepts_is_the_union_of_rule_type_patterns_in_order() -> None:
    plugin = Authz("deny container.* A=1; allow container.create; allow image.pull")
    assert plugin.info().accepts == ("container.*", "container.create", "image.pull")


def test_two_instances_coexist_under_different_names_and_reasons_name_them() -> None:
    first = Authz("allow *")
    second = Authz("deny *", name="authz-images")
    assert (first.info().name, second.info().name) == ("authz", "authz-images")
    [reply] = run_plugin(second, Message("x"))
    assert reply.reason == "denied by authz-images rule 1: deny *"


def test_empty_rules_between_semicolons_are_skipped_and_do_not_shift_numbers() -> None:
    rules = parse_rules(";; allow a ;;\n deny b ;")
    assert [(r.number, r.action, r.type_pattern) for r in rules] == [
        (1, "allow", "a"),
        (2, "deny", "b"),
    ]


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        ("", "no rules"),
        (" ; ; ", "no rules"),
        ("allow", "rule 1 ('allow'): expected 'allow|deny TYPE_PATTERN"),
        ("allow *; permit x", "rule 2 ('permit x'): action must be 'allow' or 'deny'"),
        ("deny Image=x", "rule 1 ('deny Image=x'): the second word must be a message-type"),
        ("deny x Image", "condition 'Image' is not FIELD.PATH=VALUE_GLOB"),
        ("deny x Host..Config=1", "field path 'Host..Config' has an empty part"),
        ("deny x 'Image=y", "cannot split into words"),
    ],
)
def test_an_invalid_option_is_an_option_error_naming_the_rule(option: str, complaint: str) -> None:
    with pytest.raises(OptionError) as caught:
        Authz(option)
    assert str(caught.value).startswith(f"plugin 'authz': bad option {option!r}: ")
    assert complaint in str(caught.value)


_types = st.sampled_from(["container.create", "container.start", "image.pull", "volume.rm"])
_type_patterns = st.sampled_from(["*", "container.*", "container.create", "image.pull"])
_conditions = st.lists(
    st.tuples(st.sampled_from(["Image", "HostConfig.Privileged"]), st.sampled_from(["a*", "true"])),
    max_size=2,
)
_rules = st.lists(
    st.tuples(st.sampled_from(["allow", "deny"]), _type_patterns, _conditions), max_size=4
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "Image": st.sampled_from(["a/b", "b/c"]),
        "HostConfig": st.fixed_dictionaries({"Privileged": st.booleans()}),
    },
)


def _text(rules: list[tuple[str, str, list[tuple[str, str]]]]) -> str:
    return "; ".join(
        " ".join([action, pattern, *(f"{f}={g}" for f, g in conds)])
        for action, pattern, conds in rules
    )


@settings(max_examples=150, deadline=None)
@given(rules=_rules, message_type=_types, body=_bodies, action=st.sampled_from(["allow", "deny"]))
def test_a_leading_unconditional_rule_for_the_type_decides_whatever_follows(
    rules: list[tuple[str, str, list[tuple[str, str]]]],
    message_type: str,
    body: dict[str, Any],
    action: str,
) -> None:
    reply = verdict(_text([(action, message_type, []), *rules]), message_type, body)
    assert (reply.verdict is Verdict.DROP) is (action == "deny")


@settings(max_examples=150, deadline=None)
@given(rules=_rules, message_type=_types, body=_bodies, position=st.integers(0, 4))
def test_a_rule_for_another_type_never_changes_the_outcome(
    rules: list[tuple[str, str, list[tuple[str, str]]]],
    message_type: str,
    body: dict[str, Any],
    position: int,
) -> None:
    rules = [*rules, ("allow", "*", [])]
    inert: tuple[str, str, list[tuple[str, str]]] = ("deny", "unrelated.type", [])
    with_inert = [*rules[:position], inert, *rules[position:]]
    before = verdict(_text(rules), message_type, body)
    after = verdict(_text(with_inert), message_type, body)
    assert before.verdict is after.verdict


@settings(max_examples=100, deadline=None)
@given(rules=_rules.filter(bool), message_type=_types, body=_bodies)
def test_a_message_no_rule_matches_is_dropped_fail_closed(
    rules: list[tuple[str, str, list[tuple[str, str]]]], message_type: str, body: dict[str, Any]
) -> None:
    # A condition on a field no body has makes every rule miss.
    missing = [(action, pattern, [*conds, ("Absent", "*")]) for action, pattern, conds in rules]
    [reply] = run_plugin(Authz(_text(missing)), Message(message_type, body), strict=False)
    assert reply.verdict is Verdict.DROP
    assert reply.reason.endswith("(fail-closed)")
