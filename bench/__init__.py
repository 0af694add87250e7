"""Benchmarks: suite speed and Processor load, with baselines (``python -m bench --help``)."""
