"""Subprocess plugins: spawn with FD 3/4, handshake, supervise, restart, stop.

:class:`ExecHandle` is the router's :class:`~router.handle.PluginHandle` for a plugin
started as a command (``routerd --plugin-exec CMD``).
"""

from ._errors import ExecError as ExecError
from ._errors import PluginCrashed as PluginCrashed
from ._errors import PluginProtocolError as PluginProtocolError
from ._errors import PluginStartError as PluginStartError
from ._errors import PluginUnavailable as PluginUnavailable
from ._handle import ExecHandle as ExecHandle
from ._handle import describe_exit as describe_exit
from ._restart import CrashHistory as CrashHistory
from ._restart import RestartPolicy as RestartPolicy
from ._spawn import PLUGIN_ENV as PLUGIN_ENV
from ._spawn import PluginProcess as PluginProcess
from ._spawn import SpawnError as SpawnError
from ._spawn import spawn as spawn
from ._spawn import split_command as split_command
from ._state import ExecState as ExecState
