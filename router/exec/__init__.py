"""Subprocess plugins: spawn with FD 3/4, handshake, supervise, restart, stop.

:class:`ExecHandle` is the router's :class:`~router.handle.PluginHandle` for a plugin
started as a command (``routerd --plugin-exec CMD``).
"""

from plugin_sdk.spawn import PLUGIN_ENV as PLUGIN_ENV
from plugin_sdk.spawn import PluginProcess as PluginProcess
from plugin_sdk.spawn import SpawnError as SpawnError
from plugin_sdk.spawn import spawn as spawn
from plugin_sdk.spawn import split_command as split_command

from ._errors import ExecError as ExecError
from ._errors import PluginCrashed as PluginCrashed
from ._errors import PluginProtocolError as PluginProtocolError
from ._errors import PluginStartError as PluginStartError
from ._errors import PluginUnavailable as PluginUnavailable
from ._handle import ExecHandle as ExecHandle
from ._handle import SubmitDone as SubmitDone
from ._handle import describe_exit as describe_exit
from ._restart import CrashHistory as CrashHistory
from ._restart import RestartPolicy as RestartPolicy
from ._state import ExecState as ExecState
