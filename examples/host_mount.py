"""host-mount as a subprocess plugin: the builtin's class, unchanged.

``routerd --plugin host-mount "/data /var/data"`` runs it in process;
``routerd --plugin-exec "python examples/host_mount.py '/data /var/data'"`` (or
``python -m plugin_sdk router.builtins.host_mount:HostMount '/data /var/data'``)
runs the very same class out of process.
"""

from __future__ import annotations

from plugin_sdk import run
from router.builtins.host_mount import HostMount

__all__ = ["HostMount"]

if __name__ == "__main__":
    run(HostMount)
