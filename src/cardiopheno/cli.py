"""The ``cardiopheno`` console command.

Each subcommand lives beside the code it runs, in a module exposing ``register(subparsers)`` that
adds its parser and sets ``func``; this file only lists those modules.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

import cardiopheno

COMMAND_MODULES = (
    "cardiopheno.synth.cli",
    "cardiopheno.phenotypes.cli",
    "cardiopheno.io.cli",
    "cardiopheno.segment.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardiopheno", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=cardiopheno.__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
