"""Benchmarks of screen-bot, each figure beside a baseline measured in the same run.

Run them all with ``python -m benchmarks [--quick] [--out PATH]`` from the repository root.
Not part of the test suite (``tests/test_benchmarks_smoke.py`` runs ``--quick`` only).
"""
