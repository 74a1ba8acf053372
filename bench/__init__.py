"""Benchmarks, run from the repository's root as modules (``python -m bench.bench_pages``), so
they import the shop and ``tests.helpers`` as the test suite does."""
