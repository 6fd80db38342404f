"""The `restoreae` command: parses arguments and dispatches to the package's modules.

No logic lives here. Each subcommand has an ``add_<name>`` function declaring its arguments (in
the module of this package named after its stage: :mod:`~restoreae.cli.data`,
:mod:`~restoreae.cli.train`, :mod:`~restoreae.cli.evaluate`, :mod:`~restoreae.cli.restore`,
:mod:`~restoreae.cli.serve`) and a ``_run_<name>`` function that imports the implementing module
lazily (so ``--help`` is fast) and calls it. A :class:`~restoreae.errors.RestoreAEError` becomes
``error: <message>`` and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import functools
import sys

from restoreae.cli.data import add_build_data, add_preview_damage
from restoreae.cli.evaluate import add_eval
from restoreae.cli.options import HelpFormatter
from restoreae.cli.restore import add_demo, add_export, add_restore, add_restore_page
from restoreae.cli.serve import add_serve
from restoreae.cli.train import add_average_weights, add_models, add_train
from restoreae.errors import RestoreAEError

__all__ = ["build_parser", "main"]

DESCRIPTION = (
    "Restore damaged images of Chinese characters (rubbings, inscriptions, calligraphy, "
    "handwriting) with a neural network that runs on your computer. Start with "
    "`restoreae restore PICTURE.png --char 永` (results go to results/), `restoreae serve` for a "
    "web page, or `restoreae demo`. Training your own model: build-data, train, eval, export."
)

#: The subcommands, in the order ``--help`` lists them.
_COMMANDS = (
    add_build_data,
    add_preview_damage,
    add_models,
    add_train,
    add_average_weights,
    add_eval,
    add_restore,
    add_restore_page,
    add_export,
    add_serve,
    add_demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``restoreae`` parser with every subcommand; ``args.func(args)`` runs the chosen one."""
    from restoreae import __version__

    parser = argparse.ArgumentParser(
        prog="restoreae", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"restoreae {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=functools.partial(argparse.ArgumentParser, formatter_class=HelpFormatter),
    )
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``restoreae ARGV``; the exit status (0 ok, 1 failed or system error, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RestoreAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(
            "error: out of memory (try smaller inputs or a smaller --batch-size)", file=sys.stderr
        )
        return 1
    except OSError as exc:  # the system's own one-line reason: disk full, permission, port in use
        where = f"{exc.filename}: " if exc.filename else ""
        reason = (
            "no space left on device"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else (exc.strerror or str(exc)).lower()
        )
        print(f"error: {where}{reason}", file=sys.stderr)
        return 1
