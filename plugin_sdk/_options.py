"""Plugin options: the one string given after the plugin's name (``--plugin NAME "OPTION"``).

A plugin parses its option in ``configure``; :func:`split_option` gives shell-like
words, and :class:`OptionError` is how a plugin says the option is wrong.
"""

from __future__ import annotations

import shlex

__all__ = ["OptionError", "split_option"]


class OptionError(ValueError):
    """A plugin's option string is invalid.

    Raise it from ``configure`` with just the problem; the Plugin base class adds
    the plugin's name and the option, so the text reads
    ``plugin 'host-mount': bad option '/data': expected two paths``.
    """

    def __init__(self, problem: str, *, plugin: str | None = None, option: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.plugin = plugin
        self.option = option

    def __str__(self) -> str:
        if self.plugin is None:
            return self.problem
        return f"plugin {self.plugin!r}: bad option {self.option!r}: {self.problem}"

    def located(self, plugin: str, option: str) -> OptionError:
        """This error, naming ``plugin`` and ``option`` (unless it names a plugin already)."""
        if self.plugin is not None:
            return self
        return OptionError(self.problem, plugin=plugin, option=option)


def split_option(option: str) -> list[str]:
    """Split an option into words like a POSIX shell (quotes group, backslash escapes).

    Raises :class:`OptionError` for unbalanced quotes.
    """
    try:
        return shlex.split(option)
    except ValueError as exc:
        raise OptionError(f"cannot split into words: {exc}") from None
