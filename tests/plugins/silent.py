"""Test plugin: never speaks, ignores FD 3 EOF, sleeps until a signal ends it."""

import time

while True:
    time.sleep(60)
