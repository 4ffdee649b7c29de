"""``host-mount "SRC DST"``: bind a host directory into every container created.

The 2014 plugin proposal's example (``--plugin host-mount "/data /var/data"``).
On each ``container.create`` message, whose body has the Docker Engine API shape
``{"Image": ..., "HostConfig": {"Binds": ["SRC:DST[:MODE]", ...]}}``, it adds the
bind ``SRC:DST``, creating ``HostConfig`` and ``Binds`` when missing.

* Idempotent: a body that already binds ``SRC:DST`` (with any mode) passes on
  unchanged, so running the plugin twice adds one bind.
* A bind of another source to the same ``DST`` is an error reply: Docker would
  reject the duplicate mount point anyway, and silently preferring either one
  would hide the conflict.
"""

from __future__ import annotations

import posixpath
from typing import Any

from plugin_sdk import Message, OptionError, Plugin, Reply, error, handles, split_option

__all__ = ["HostMount"]


class HostMount(Plugin):
    """Adds the bind ``SRC:DST`` to every ``container.create`` body."""

    name = "host-mount"
    version = "1.0"

    source: str
    """The host path (absolute, normalised)."""
    target: str
    """The path inside the container (absolute, normalised)."""
    _bind: str

    def configure(self, option: str) -> None:
        """Parse ``"SRC DST"``: exactly two absolute paths (quote paths with spaces)."""
        words = split_option(option)
        if len(words) != 2:
            raise OptionError(
                f"expected two absolute paths 'SRC DST', got {len(words)} word(s) {words}"
            )
        for role, path in zip(("SRC", "DST"), words, strict=True):
            if not posixpath.isabs(path):
                raise OptionError(f"{role} {path!r} is not an absolute path")
            if ":" in path:
                raise OptionError(f"{role} {path!r} contains ':', which a Docker bind cannot hold")
        self.source, self.target = (posixpath.normpath(w) for w in words)
        self._bind = f"{self.source}:{self.target}"

    @property
    def bind(self) -> str:
        """The bind string added to ``HostConfig.Binds``."""
        return self._bind

    @handles("container.create")
    def add_bind(self, msg: Message) -> Message | Reply | None:
        """Return the message with the bind added, or pass it if already bound."""
        body = msg.body
        if not isinstance(body, dict):
            return error(f"container.create body must be a map, got {type(body).__name__}")
        host_config: Any = body.get("HostConfig")
        if host_config is None:
            host_config = {}
        if not isinstance(host_config, dict):
            return error(f"HostConfig must be a map, got {type(host_config).__name__}")
        binds: Any = host_config.get("Binds")
        if binds is None:
            binds = []
        if not isinstance(binds, list) or not _all_strings(binds):
            return error(f"HostConfig.Binds must be a list of strings, got {binds!r}")
        for existing in binds:
            parts = existing.split(":")
            if len(parts) < 2 or posixpath.normpath(parts[1]) != self.target:
                continue
            if posixpath.normpath(parts[0]) == self.source:
                return None
            return error(
                f"HostConfig.Binds already mounts {parts[0]!r} at {self.target!r};"
                f" host-mount would add {self.bind!r}"
            )
        new_host_config = {**host_config, "Binds": [*binds, self._bind]}
        # Built directly: dataclasses.replace costs as much as the edit itself.
        return Message(msg.type, {**body, "HostConfig": new_host_config}, msg.id, msg.headers)


def _all_strings(items: list[Any]) -> bool:
    for item in items:  # noqa: SIM110 - a loop costs less than all() over a generator
        if not isinstance(item, str):
            return False
    return True
