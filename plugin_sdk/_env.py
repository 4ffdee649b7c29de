"""The environment variable that tells a process it was started as a plugin.

Its own trio-free module: the runner checks it before deciding whether to import trio.
"""

from __future__ import annotations

from typing import Final

PLUGIN_ENV: Final = "CHANROUTER_PLUGIN"
"""Set to ``1`` in a plugin's environment: tells it the router started it."""
