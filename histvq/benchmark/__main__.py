"""``python -m histvq.benchmark [subcommand] [options]``; without a subcommand, run them all."""

from __future__ import annotations

import argparse
import sys

from histvq.benchmark import subcommands
from histvq.errors import run_reporting_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m histvq.benchmark", description="histvq benchmarks"
    )
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for command in subcommands().values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None:
        return int(args.run(args) or 0)
    # No subcommand: every benchmark with its default options.
    for command in subcommands().values():
        defaults = build_parser().parse_args([command.name])
        status = int(command.run(defaults) or 0)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
