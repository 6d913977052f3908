"""Load generator and in-process benchmarks."""
