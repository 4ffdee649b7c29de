"""The lifecycle states of a subprocess plugin (shown by the admin interface)."""

from __future__ import annotations

import enum

__all__ = ["ExecState"]


class ExecState(enum.StrEnum):
    """Where a subprocess plugin is in its life."""

    NEW = "new"
    """Created; ``start()`` not called yet."""
    STARTING = "starting"
    """Spawned, waiting for its handshake."""
    READY = "ready"
    """Handshake done: calls go through."""
    RESTARTING = "restarting"
    """Crashed; waiting out the backoff delay or handshaking again."""
    QUARANTINED = "quarantined"
    """Crashed too often in the window: down until restarted by hand."""
    STOPPING = "stopping"
    """``stop()`` is closing it."""
    STOPPED = "stopped"
    """Gone for good."""
