"""The CLI's one exception base: it knows its exit code and how to show itself.

Code below the CLI raises its own errors; the CLI translates the expected ones into a
:class:`CliError` at the top and lets click print it. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import click

__all__ = ["EXIT_STARTUP", "CliError"]

EXIT_STARTUP = 1
"""routerd could not start: a plugin failed to start or the admin socket is unusable."""


class CliError(click.ClickException):
    """An error shown as ``Error: <message>`` with its own exit code."""

    exit_code = EXIT_STARTUP
