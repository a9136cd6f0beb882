"""Benchmarks: `make bench` prints figures and ratios. They never pass or fail on a number."""
