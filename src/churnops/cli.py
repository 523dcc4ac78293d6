"""`churnops COMMAND ...`: one entry point; each command lives in its own module.

A command's module defines `main(argv: list[str] | None = None)` and parses its own
arguments, so adding a command is one line here.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("churnops.data", "get data/ as data.dvc records it"),
    "pipeline": ("churnops.pipeline", "run `dvc repro` as one transaction"),
}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: churnops COMMAND [ARGS...]\n\ncommands:\n{lines}")
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    module, _ = COMMANDS[args[0]]
    importlib.import_module(module).main(args[1:])
