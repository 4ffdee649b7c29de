"""chanrouter benchmarks: every figure is a ratio against a baseline measured in the same run.

Run with ``bin/bench [--quick] [--json PATH]``; see ``bench/README.md`` for what each
figure means. The package is not installed (it is a dev tool); run it from the repo root.
"""
