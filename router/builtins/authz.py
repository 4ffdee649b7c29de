"""``authz "RULES"``: allow or drop messages by ordered rules, fail-closed.

A member of a Docker-style authorization chain: several authz instances in a
pipeline must all allow a message, because a drop stops it. The option is a list
of rules separated by ``;`` (quote a ``;`` inside a value)::

    deny container.create Image=untrusted/*;
    deny container.* HostConfig.Privileged=true;
    allow *

Each rule is ``allow|deny TYPE_PATTERN [FIELD.PATH=VALUE_GLOB ...]``:

* The rule matches a message when the type glob matches its type and every
  condition holds (conditions are ANDed).
* ``FIELD.PATH`` is dotted into the body (a decimal part indexes a list); a
  missing field never matches. The value is compared as text with a glob:
  strings as is, numbers by ``str()``, booleans as ``true``/``false``, null as
  ``null``; a list matches when any item does; a map never matches.
* The first matching rule wins: ``allow`` passes the message, ``deny`` drops it
  with a reason naming the plugin and the rule.
* No rule matches: the message is dropped (fail-closed).

The plugin is routed only the types its rules name (the union of their type
patterns): end with ``allow *`` or ``deny *`` to see every message.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from plugin_sdk import Message, OptionError, Plugin, Reply, drop, handles, type_matches

from ._fields import MISSING, get_field, parse_path

__all__ = ["Authz", "Condition", "Rule", "parse_rules"]

_ACTIONS: Final = ("allow", "deny")
_MEMO_LIMIT: Final = 1024


def _as_text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


@dataclass(frozen=True, slots=True)
class Condition:
    """``FIELD.PATH=VALUE_GLOB``: the body field at ``path`` matches ``glob`` as text."""

    path: tuple[str, ...]
    glob: str

    def holds(self, body: object) -> bool:
        """Whether the condition holds for ``body``."""
        value = get_field(body, self.path)
        if value is MISSING or isinstance(value, dict):
            return False
        values = value if isinstance(value, list) else [value]
        return any(
            not isinstance(v, dict | list) and fnmatchcase(_as_text(v), self.glob) for v in values
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: an action, a message-type pattern and the conditions on the body."""

    number: int
    """1-based position in the option, for reasons and errors."""
    action: str
    type_pattern: str
    conditions: tuple[Condition, ...]
    text: str
    """The rule as written, for drop reasons."""

    def matches(self, msg: Message) -> bool:
        """Whether this rule applies to ``msg``."""
        return type_matches(self.type_pattern, msg.type) and all(
            c.holds(msg.body) for c in self.conditions
        )


def _all_hold(conditions: tuple[Condition, ...], body: object) -> bool:
    for condition in conditions:  # noqa: SIM110 - a loop costs less than all() over a generator
        if not condition.holds(body):
            return False
    return True


def _split_rules(option: str) -> list[list[str]]:
    lexer = shlex.shlex(option, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    rules: list[list[str]] = [[]]
    try:
        for token in lexer:
            if set(token) == {";"}:
                rules.extend([] for _ in token)
            else:
                rules[-1].append(token)
    except ValueError as exc:
        raise OptionError(f"cannot split into words: {exc}") from None
    return rules


def _parse_rule(number: int, words: list[str]) -> Rule:
    text = " ".join(words)
    where = f"rule {number} ({text!r})"
    if len(words) < 2:
        raise OptionError(f"{where}: expected 'allow|deny TYPE_PATTERN [FIELD=GLOB ...]'")
    action, type_pattern, *condition_words = words
    if action not in _ACTIONS:
        raise OptionError(f"{where}: action must be 'allow' or 'deny', got {action!r}")
    if "=" in type_pattern:
        raise OptionError(f"{where}: the second word must be a message-type pattern")
    conditions = []
    for word in condition_words:
        field_text, eq, glob = word.partition("=")
        if not eq:
            raise OptionError(f"{where}: condition {word!r} is not FIELD.PATH=VALUE_GLOB")
        try:
            conditions.append(Condition(parse_path(field_text), glob))
        except ValueError as exc:
            raise OptionError(f"{where}: {exc}") from None
    return Rule(number, action, type_pattern, tuple(conditions), text)


def parse_rules(option: str) -> tuple[Rule, ...]:
    """Parse the authz option; raise :class:`OptionError` naming the bad rule."""
    numbered = [words for words in _split_rules(option) if words]
    if not numbered:
        raise OptionError("no rules: write for example 'deny container.* Image=bad/*; allow *'")
    return tuple(_parse_rule(n, words) for n, words in enumerate(numbered, start=1))


class Authz(Plugin):
    """Allows or drops each message by the first matching rule; none matching drops."""

    name = "authz"
    version = "1.0"
    rules: tuple[Rule, ...] = ()
    _memo: tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]] | None = None

    def configure(self, option: str) -> None:
        """Parse the rules (see the module docstring)."""
        self.rules = parse_rules(option)

    def _rules_for(self, message_type: str) -> tuple[Rule, ...]:
        """The rules whose type pattern matches ``message_type``, in rule order.

        Memoised per type (a router sends a few types many times, and globs cost),
        for the rules it was made from: assigning new ``rules`` starts a new memo.
        """
        memo = self._memo
        if memo is None or memo[0] is not self.rules:
            memo = self._memo = (self.rules, {})
        by_type = memo[1]
        rules = by_type.get(message_type)
        if rules is None:
            if len(by_type) >= _MEMO_LIMIT:
                by_type.clear()  # bounded: types may come from the outside world
            rules = tuple(r for r in self.rules if type_matches(r.type_pattern, message_type))
            by_type[message_type] = rules
        return rules

    def accepts(self) -> tuple[str, ...]:
        """The type patterns the rules name, each once, in rule order."""
        return tuple(dict.fromkeys(rule.type_pattern for rule in self.rules))

    @handles("*")
    def authorize(self, msg: Message) -> Reply | None:
        """Pass or drop ``msg`` by the first rule that matches it."""
        body = msg.body
        for rule in self._rules_for(msg.type):
            if _all_hold(rule.conditions, body):
                if rule.action == "allow":
                    return None
                return drop(f"denied by {self.name} rule {rule.number}: {rule.text}")
        return drop(f"denied by {self.name}: no rule matches {msg.type} (fail-closed)")
