"""The command-line interface: ``python -m core <command>``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from core import __version__
from core.errors import StudioError


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand in :mod:`core.cli`."""
    import core.cli

    parser = argparse.ArgumentParser(
        prog="python -m core", description="BeatTok Studio command-line interface."
    )
    parser.add_argument("--version", action="version", version=f"BeatTok Studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(core.cli.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"core.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
