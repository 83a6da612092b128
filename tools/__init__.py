"""Scripts the Makefile runs that are neither tests nor benchmarks."""
