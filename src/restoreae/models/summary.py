"""`restoreae models`: one row per registered model — name, kind, parameters, GFLOPs."""

from __future__ import annotations

import argparse
import json
import sys

import torch
from tqdm import tqdm

from restoreae.errors import ConfigError
from restoreae.models.io import count_params, gflops
from restoreae.models.registry import create_model, get_model_spec, list_models


def summarize(size: int = 224, in_chans: int = 2, names: list[str] | None = None) -> list[dict]:
    """Rows ``{"name", "kind", "params_m", "gflops", "description"}`` for the given models.

    Models are built with ``img_size=size`` (that fixes the latent grid of the bottleneck AEs) and
    measured on one ``size × size`` image; GFLOPs = 2 · MACs / 1e9.
    """
    if size < 32 or size % 32:
        raise ConfigError(f"--size must be a positive multiple of 32, got {size}")
    rows = []
    names = list_models() if names is None else names
    bar = tqdm(names, desc="counting FLOPs", unit="model", file=sys.stderr, disable=None)
    for name in bar:
        bar.set_postfix_str(name)
        spec = get_model_spec(name)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = create_model(name, in_chans=in_chans, img_size=size).eval()
        rows.append(
            {
                "name": name,
                "kind": spec.kind,
                "params_m": round(count_params(model) / 1e6, 2),
                "gflops": round(gflops(model, size, in_chans), 2),
                "description": spec.description,
            }
        )
    return rows


def format_rows(rows: list[dict], fmt: str, size: int) -> str:
    """Render rows as ``table`` (aligned text), ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False)
    head = ["name", "kind", "params (M)", f"GFLOPs @{size}", "description"]
    body = [
        [r["name"], r["kind"], f"{r['params_m']:.2f}", f"{r['gflops']:.2f}", r["description"]]
        for r in rows
    ]
    if fmt == "markdown":
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "|".join(["---", "---", "---:", "---:", "---"]) + "|",
        ]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=False)]
    right = {2, 3}

    def fmt_row(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join(
        [fmt_row(head), fmt_row(["-" * w for w in widths])] + [fmt_row(b) for b in body]
    )


def models_command(args: argparse.Namespace) -> int:
    """CLI entry: ``[PATTERN]``, ``--size``, ``--in-chans``, ``--format table|markdown|json``;
    progress on stderr while the FLOPs are counted."""
    pattern = getattr(args, "pattern", None)
    names = list_models(pattern)
    if not names:
        raise ConfigError(
            f"no registered model matches {pattern!r}; available: {', '.join(list_models())}"
        )
    rows = summarize(args.size, args.in_chans, names)
    sys.stdout.write(format_rows(rows, args.format, args.size) + "\n")
    return 0
