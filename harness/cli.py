"""Command line of the harness (capability report until the scenarios land)."""

from __future__ import annotations

import argparse

from securememory.memcall import capabilities


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    parser.parse_args(argv)
    print(capabilities().report())
    return 0
