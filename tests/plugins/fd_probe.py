"""Test plugin: reports its open fds, stdin and environment as JSON on FD 4, then exits.

Not a real plugin (no handshake): it lets tests check what spawn() hands a child.
"""

import json
import os
import sys

fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
report = {
    "fds": fds,
    "stdin": os.readlink("/proc/self/fd/0"),
    "env": os.environ.get("CHANROUTER_PLUGIN"),
    "fd3": os.read(3, 100).decode(),
    "argv": sys.argv[1:],
}
os.write(4, json.dumps(report).encode())
print("to stdout")
print("to stderr", file=sys.stderr)
