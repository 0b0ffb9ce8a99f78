"""Benchmarks, not installed: each script measures one speed or quality goal and prints its figures, the last line
one JSON object (bench/README.md holds the results; `posterbench bench NAME` runs `bench/NAME.py`)."""
