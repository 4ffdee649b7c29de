"""What a plugin says about itself: the data the router plans routes with.

The same record is built from a Python plugin class (in process) and sent in the
handshake by a subprocess plugin, so it has a wire shape too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OnError", "PluginInfo", "PluginInfoError"]


class OnError(enum.StrEnum):
    """What happens to a message when a plugin fails on it."""

    FAIL = "fail"
    """The message's result is failed, naming the plugin (the default: fail-closed)."""
    SKIP = "skip"
    """The plugin is skipped: the message goes on as if it had passed through."""
    RETRY = "retry"
    """The call is tried again, up to ``max_attempts`` in all, then fails."""


class PluginInfoError(ValueError):
    """A plugin's self-description is invalid; the text names the plugin and the field."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A plugin's name, accepted types and routing preferences."""

    name: str
    accepts: tuple[str, ...]
    """Exact message types or glob patterns (``container.*``, ``*``)."""
    version: str = "0"
    priority: int = 0
    """Higher runs earlier; ties keep registration order."""
    concurrency: int = 1
    """How many messages the plugin handles at once (1 keeps its order)."""
    on_error: OnError = OnError.FAIL
    max_attempts: int = 3
    """With ``on_error=retry``: attempts in all, the first included."""
    timeout: float = 10.0
    """Seconds one call may take before it counts as an error."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        who = f"plugin {self.name!r}" if isinstance(self.name, str) else "plugin"
        if not isinstance(self.name, str) or not self.name or any(c.isspace() for c in self.name):
            raise PluginInfoError(f"{who}: name must be a non-empty string without spaces")
        if not self.accepts or not all(isinstance(t, str) and t for t in self.accepts):
            raise PluginInfoError(f"{who}: accepts no message types (declare at least one)")
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise PluginInfoError(f"{who}: priority must be an integer, got {self.priority!r}")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise PluginInfoError(f"{who}: concurrency must be >= 1, got {self.concurrency!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise PluginInfoError(f"{who}: max_attempts must be >= 1, got {self.max_attempts!r}")
        if not isinstance(self.timeout, int | float) or not self.timeout > 0:
            raise PluginInfoError(f"{who}: timeout must be > 0 seconds, got {self.timeout!r}")
        try:
            OnError(self.on_error)
        except ValueError:
            choices = ", ".join(e.value for e in OnError)
            raise PluginInfoError(
                f"{who}: on_error must be one of {choices}, got {self.on_error!r}"
            ) from None

    def to_wire(self) -> dict[str, Any]:
        """The msgpack shape sent in a subprocess plugin's handshake."""
        return {
            "name": self.name,
            "accepts": list(self.accepts),
            "version": self.version,
            "priority": self.priority,
            "concurrency": self.concurrency,
            "on_error": str(self.on_error),
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
        }

    @classmethod
    def from_wire(cls, obj: object) -> PluginInfo:
        """Parse a handshake record, or raise :class:`PluginInfoError` saying what is wrong."""
        if not isinstance(obj, dict):
            raise PluginInfoError(f"plugin info must be a map, got {type(obj).__name__}")
        accepts = obj.get("accepts")
        if not isinstance(accepts, list | tuple):
            raise PluginInfoError(
                f"plugin {obj.get('name')!r}: accepts must be a list of types, got {accepts!r}"
            )
        known = {"name", "accepts", "version", "priority", "concurrency", "on_error"}
        known |= {"max_attempts", "timeout"}
        try:
            return cls(
                name=obj.get("name"),  # type: ignore[arg-type]  # checked in __post_init__
                accepts=tuple(accepts),
                version=str(obj.get("version", "0")),
                priority=obj.get("priority", 0),
                concurrency=obj.get("concurrency", 1),
                on_error=OnError(obj.get("on_error", "fail")),
                max_attempts=obj.get("max_attempts", 3),
                timeout=obj.get("timeout", 10.0),
                extra={k: v for k, v in obj.items() if k not in known},
            )
        except ValueError as exc:
            if isinstance(exc, PluginInfoError):
                raise
            raise PluginInfoError(f"plugin {obj.get('name')!r}: {exc}") from None
