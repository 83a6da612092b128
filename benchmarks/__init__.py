"""lossnet benchmarks: run with ``python -m benchmarks.run`` (``make bench``); never part of the tests."""
