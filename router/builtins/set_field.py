"""``set-field "ENV_VAR FIELD.PATH [TYPE] [--strip]"``: turn a container env var into config.

PouchContainer's pre-create case: old orchestrators pass limits as environment
variables; this plugin reads ``ENV_VAR=value`` from a ``container.create``
body's ``Env`` list (Docker shape ``["K=V", ...]``) and sets the body field at
``FIELD.PATH`` (dotted from the body's root, maps created as needed) to the
value converted by ``TYPE``:

==============  ===============================================================
``str``         the text as is (the default)
``int``         a decimal integer: ``"42"`` -> 42
``bool``        ``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case)
``bytes-size``  a size with an optional binary unit ``b k m g t p`` (``kb``,
                ``kib`` too, any case): ``"512m"`` -> 536870912; ``"1.5g"`` ok
``cpus``        a CPU count, as Docker's ``--cpus``, in nano-CPUs:
                ``"2"`` -> 2000000000, ``"0.5"`` -> 500000000
==============  ===============================================================

* An absent env var leaves the message unchanged; if it appears several times
  the last one counts, as in Docker.
* The env var overrides a value already at ``FIELD.PATH``.
* A value that does not convert is an error reply naming the env var and value.
* ``--strip`` also removes the env var from ``Env`` once it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from plugin_sdk import Message, OptionError, Plugin, Reply, error, handles, split_option

from ._fields import FieldPathError, parse_path, replace_field

__all__ = ["CONVERTERS", "SetField", "parse_bytes_size", "parse_cpus"]

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_UNITS: Final = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})


def parse_bytes_size(text: str) -> int:
    """``"512m"`` -> 536870912 (binary units); raise ValueError if not a size."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError("not a size such as 512m, 2g or 1048576")
    number, unit = match.groups()
    size = Decimal(number) * 1024 ** _UNITS[unit.lower()]
    if size != size.to_integral_value():
        raise ValueError("not a whole number of bytes")
    return int(size)


def parse_cpus(text: str) -> int:
    """``"1.5"`` -> 1500000000 nano-CPUs; raise ValueError if not a CPU count."""
    try:
        cpus = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("not a CPU count such as 2 or 0.5") from None
    if not cpus.is_finite() or cpus < 0:
        raise ValueError("not a CPU count such as 2 or 0.5")
    nano = cpus * 1_000_000_000
    if nano != nano.to_integral_value():
        raise ValueError("more precise than one nano-CPU")
    return int(nano)


def _parse_int(text: str) -> int:
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
        raise ValueError("not a decimal integer")
    return int(text)


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, yes/no, on/off, 1/0)")


CONVERTERS: Final[dict[str, Callable[[str], Any]]] = {
    "str": str,
    "int": _parse_int,
    "bool": _parse_bool,
    "bytes-size": parse_bytes_size,
    "cpus": parse_cpus,
}
"""The conversion for each TYPE word; each raises ValueError saying what is wrong."""

_FLAGS: Final = frozenset({"--strip"})


class SetField(Plugin):
    """Copies one env var of ``container.create`` into a body field, converted."""

    name = "set-field"
    version = "1.0"
    env_var: str
    path: tuple[str, ...]
    kind: str = "str"
    strip: bool = False
    _prefix: str
    """``ENV_VAR=``, the start of the Env entry this looks for."""
    _convert: Callable[[str], Any]
    """The conversion of :attr:`kind` (looked up once, in ``configure``)."""

    def configure(self, option: str) -> None:
        """Parse ``ENV_VAR FIELD.PATH [TYPE] [--strip]``."""
        words = split_option(option)
        flags = [w for w in words if w.startswith("--")]
        args = [w for w in words if not w.startswith("--")]
        for flag in flags:
            if flag not in _FLAGS:
                raise OptionError(f"unknown flag {flag!r} (known: {', '.join(sorted(_FLAGS))})")
        self.strip = "--strip" in flags
        if len(args) not in (2, 3):
            raise OptionError("expected 'ENV_VAR FIELD.PATH [TYPE] [--strip]'")
        env_var, path = args[:2]
        if "=" in env_var:
            raise OptionError(f"env var name {env_var!r} contains '='")
        self.env_var = env_var
        try:
            self.path = parse_path(path)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        if len(args) == 3:
            if args[2] not in CONVERTERS:
                known = ", ".join(CONVERTERS)
                raise OptionError(f"unknown type {args[2]!r} (known: {known})")
            self.kind = args[2]
        self._prefix = env_var + "="
        self._convert = CONVERTERS[self.kind]

    @handles("container.create")
    def apply(self, msg: Message) -> Message | Reply | None:
        """Set the field from the env var, or pass the message on if the var is absent."""
        body = msg.body
        if not isinstance(body, dict):
            return error(f"container.create body must be a map, got {type(body).__name__}")
        env: Any = body.get("Env")
        if env is None:
            return None
        if not isinstance(env, list):
            return error(f"Env must be a list of 'NAME=value' strings, got {env!r}")
        prefix = self._prefix
        raw: str | None = None
        for item in env:
            if not isinstance(item, str):
                return error(f"Env must be a list of 'NAME=value' strings, got {env!r}")
            if item.startswith(prefix):
                raw = item[len(prefix) :]  # the last one counts, as in Docker
        if raw is None:
            return None
        try:
            value = self._convert(raw)
        except ValueError as exc:
            return error(f"env {self.env_var}={raw!r} is not a valid {self.kind}: {exc}")
        try:
            new_body, old = replace_field(body, self.path, value)
        except FieldPathError as exc:
            return error(f"cannot set {'.'.join(self.path)}: {exc}")
        if self.strip:
            new_body["Env"] = [e for e in env if not e.startswith(prefix)]
        elif type(old) is type(value) and old == value:
            # Unchanged when the field already holds the same value of the same type
            # (True == 1 in Python, but not in the body's JSON). Only the field is
            # compared: comparing whole bodies cost as much as the rest of the edit.
            return None
        # Built directly: dataclasses.replace costs as much as the edit itself.
        return Message(msg.type, new_body, msg.id, msg.headers)
