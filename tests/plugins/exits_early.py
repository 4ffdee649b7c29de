"""Test plugin: complains on stderr and exits 1 before any handshake."""

import sys

print("cannot find my config file /etc/nowhere.conf", file=sys.stderr)
sys.exit(1)
