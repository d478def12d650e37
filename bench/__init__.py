"""The benchmark harness: `python -m bench` (see BENCHMARKS.md)."""
