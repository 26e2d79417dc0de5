"""`weightspace plugins`: the registered components and methods by kind, and the plugins that failed to load."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from weightspace.cli.common import (
    console,
)
from weightspace.hookspecs import KINDS
from weightspace.registry import default_registry


def run(args: argparse.Namespace) -> None:
    registry = default_registry()
    names = {kind: registry.names(kind) for kind in KINDS}  # lists every kind first: a hook that raises is skipped
    broken = [{"entry_point": b.entry_point, "distribution": b.distribution, "error": b.error} for b in registry.broken]
    if args.json:
        print(json.dumps({**names, "broken": broken} if broken else names))
        return
    table = Table(title="weightspace plugins")
    for column in ("kind", "name", "source"):
        table.add_column(column)
    for kind in KINDS:
        entries = registry.entries(kind)
        if not entries:
            table.add_row(kind, "[dim](none)[/dim]", "")
        for name in sorted(entries):
            table.add_row(kind, name, entries[name].source)
    console.print(table)
    if broken:
        skipped = Table(title="broken plugins (skipped; the others work)")
        for column in ("entry point", "distribution", "error"):
            skipped.add_column(column, style="red" if column == "error" else None)
        for b in broken:
            skipped.add_row(b["entry_point"], b["distribution"], b["error"])
        console.print(skipped)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list registered plugins by kind")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {kind: [names]} as JSON, with "broken": [{entry_point, distribution, error}] when some failed',
    )
    p.set_defaults(func=run)
