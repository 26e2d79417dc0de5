"""The ``weightspace`` command line: one module per command, each a thin layer over the Python API.

A command module has ``add_parser(sub)``, which adds its subcommand(s) and points them at the
function that runs them: it parses nothing itself, calls the library and renders the result as a
rich table or as JSON (``--json``) with :mod:`weightspace.cli.common`. User errors (a bad ``--set``
key, an unknown plugin, a file that does not fit) are printed as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from weightspace import __version__
from weightspace.cli import (
    bench,
    distill,
    evaluate,
    generate,
    import_gridded,
    inspect,
    plugins,
    simulate,
    train,
    zoo,
)
from weightspace.errors import WeightspaceError

COMMANDS = (plugins, inspect, simulate, zoo, train, generate, evaluate, bench, import_gridded, distill)
"""In the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weightspace", description="Trained network weights as data.")
    parser.add_argument("--version", action="version", version=f"weightspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except WeightspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every write is atomic and every stage resumes: say so, no traceback
        print("error: interrupted; everything finished is kept: rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
