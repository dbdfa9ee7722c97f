"""Table 7 of the EfficientNet paper beside what this build measures and loads (python -m
scaled_models table)."""
from __future__ import annotations

import argparse
import sys

from .provenance import TABLE_DESCRIPTION, TABLE_HELP, add_table_arguments
from .zoo import request_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled_models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    table = sub.add_parser("table", help=TABLE_HELP, description=TABLE_DESCRIPTION)
    add_table_arguments(table)
    args = parser.parse_args(argv)
    request_from_args(parser, args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
