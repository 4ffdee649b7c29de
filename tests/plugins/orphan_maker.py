"""Test helper process: spawns a plugin through router.exec, prints its pid, then hangs.

The test SIGKILLs this process and checks that the plugin it spawned dies too.
argv[1]: the plugin command.
"""

import sys

import trio

from router.exec import spawn


async def main() -> None:
    process = spawn(sys.argv[1])
    # Wait until the plugin runs its own code (past the shim) before reporting its pid.
    await process.from_plugin.receive_some(10)
    print(process.pid, flush=True)
    await trio.sleep_forever()


trio.run(main)
