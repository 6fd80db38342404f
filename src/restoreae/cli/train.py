"""Arguments and dispatch of `restoreae models` (the model registry), `restoreae train` and
`restoreae average-weights`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with parameters and GFLOPs")
    p.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="only models whose name matches this shell pattern, e.g. 'unet*'",
    )
    p.add_argument(
        "--size", type=int, default=224, help="image side the FLOPs are counted for (×32)"
    )
    p.add_argument(
        "--in-chans",
        type=int,
        default=2,
        choices=(1, 2),
        help="input channels: 1 (damaged glyph) or 2 (with the reference)",
    )
    p.add_argument(
        "--format", choices=("table", "markdown", "json"), default="table", help="output format"
    )
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from restoreae.models.summary import models_command

    return models_command(args)


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (also under torchrun)")
    p.add_argument("-c", "--config", type=Path, required=True, help="YAML config of the run")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config key, e.g. --set optim.lr=1e-3 (repeatable)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="run folder or state file to resume (default: RUN_DIR/state/last.pt if present); "
        "with --eval-only: run folder or .safetensors to evaluate",
    )
    p.add_argument(
        "--eval-only", action="store_true", help="only compute validation metrics of a checkpoint"
    )
    p.add_argument(
        "--stop-at-step",
        type=int,
        default=None,
        metavar="N",
        help="save and exit at optimizer step N without changing the schedule (resume later)",
    )
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from restoreae.train.engine import train_command

    return train_command(args)


def add_average_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "average-weights",
        help="average the weights of fine-tunes of one model into a new model file",
    )
    p.add_argument("models", type=Path, nargs="+", help="model files (.safetensors), at least 2")
    p.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=None,
        help="one weight per model (normalised to sum 1; default equal)",
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="model file to write")
    p.set_defaults(func=_run_average_weights)


def _run_average_weights(args: argparse.Namespace) -> int:
    from restoreae.errors import RestoreAEError
    from restoreae.models.io import average_to_file

    try:
        out = average_to_file(args.models, args.out, args.weights)
    except ValueError as exc:
        raise RestoreAEError(f"average-weights: {exc}") from None
    print(f"wrote {out}")
    return 0
