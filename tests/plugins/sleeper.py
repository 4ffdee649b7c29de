"""Test plugin: ignores FD 3/4 and sleeps; only signals end it (parent-death tests)."""

import os
import sys
import time

os.write(4, b"up\n")
sys.stdout.flush()
while True:
    time.sleep(60)
