"""asv benchmarks for securememory: the new design against the old one and the C floor.

Run with ``asv run --python=same`` from the repository root (see README.md in
this folder); ``python benchmarks/report.py`` prints the target table.
"""
