"""Command-line entry points: ``routerd`` (the daemon) and ``routerctl`` (the admin client).

Thin by design: parse, call the engine, map errors to exit codes.
"""
