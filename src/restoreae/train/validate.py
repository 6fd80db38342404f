"""Validation: the fixed damaged validation set, the sharded validation pass, and
``--eval-only`` (the validation metrics of saved weights).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from restoreae.errors import ConfigError, DataError
from restoreae.models.weights import ModelSource
from restoreae.psnr import psnr_per_image
from restoreae.train.batches import (
    VAL_TAG,
    GlyphPairs,
    derive_seed,
    load_damage,
    make_batch,
    make_generator,
)
from restoreae.train.config import TrainConfig
from restoreae.train.distributed import DistInfo, all_reduce_sum, cleanup, init_distributed
from restoreae.train.losses import CompositeLoss, build_loss
from restoreae.utils import atomic_write

#: Validation PSNR is capped (dB) so that a perfectly restored glyph keeps the mean finite.
VAL_MAX_PSNR_DB = 100.0


@dataclass
class ValSet:
    """Fixed damaged validation glyphs: inputs ``(N, C, H, W)`` and targets ``(N, 1, H, W)``."""

    inputs: Tensor
    targets: Tensor
    batch_size: int

    def __len__(self) -> int:
        return self.inputs.shape[0]


def build_val_set(cfg: TrainConfig, damage: Any, device: torch.device, style: Any = None) -> ValSet:
    """``train.val_num`` glyphs of ``data.val_split`` damaged with seeds fixed by ``train.seed``
    (``style``: a :class:`~restoreae.damage.style.StyleTransform` applied to the targets first).

    The same on every rank and for every world size; kept on the CPU, moved per batch.
    """
    ds = GlyphPairs(cfg.data.corpus, cfg.data.val_split)
    if len(ds) == 0:
        raise DataError(
            f"data.val_split: split '{cfg.data.val_split}' of corpus '{cfg.data.corpus}' is empty"
        )
    rng = np.random.default_rng(derive_seed(cfg.train.seed, VAL_TAG))
    n = min(cfg.train.val_num, len(ds))
    idx = np.sort(rng.choice(len(ds), size=n, replace=False))
    bs = cfg.train.val_batch_size or cfg.train.batch_size
    xs, ys = [], []
    for b, start in enumerate(range(0, n, bs)):
        items = [ds[int(i)] for i in idx[start : start + bs]]
        clean = torch.stack([it[0] for it in items])
        ref = torch.stack([it[1] for it in items])
        x, y = make_batch(
            clean,
            ref,
            damage=damage,
            generator=make_generator(device, derive_seed(cfg.train.seed, VAL_TAG, b)),
            device=device,
            img_size=cfg.data.img_size,
            use_reference=cfg.data.use_reference,
            style=style,
            reference_fit=cfg.data.reference_fit,
        )
        xs.append(x.cpu())
        ys.append(y.cpu())
    return ValSet(torch.cat(xs), torch.cat(ys), bs)


#: Name of the validation set damaged with ``data.damage`` in :func:`build_val_sets`.
MAIN_VAL = "main"


def build_val_sets(cfg: TrainConfig, damage: Any, device: torch.device) -> dict[str, ValSet]:
    """The validation sets: :data:`MAIN_VAL` (``data.damage``, the batched ``damage``), then one
    per ``train.val_damage`` spec, all on the same glyphs, styled with ``train.val_style``."""
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.damage.style import build_style
    from restoreae.damage.torch_ops import TorchDamage

    try:
        style = build_style(cfg.train.val_style)
    except ConfigError as exc:
        raise ConfigError(f"train.val_style (in {cfg.source}): {exc}") from None
    sets = {MAIN_VAL: build_val_set(cfg, damage, device, style)}
    for i, spec in enumerate(cfg.train.val_damage):
        config = DamageConfig.resolve(spec, where=f"train.val_damage[{i}] (in {cfg.source})")
        sets[spec] = build_val_set(cfg, TorchDamage(config), device, style)
    return sets


def evaluate_sets(
    model: nn.Module, sets: dict[str, ValSet], criterion: CompositeLoss, info: DistInfo, **kw: Any
) -> dict[str, float]:
    """:func:`evaluate` on each set of :func:`build_val_sets` (``kw`` passed on).

    ``loss``: the main set's; ``psnr``: the main set's when it is the only one, else the mean
    over all sets (what selects the best checkpoints), with each set's as ``psnr[<name>]``.
    """
    main = evaluate(model, sets[MAIN_VAL], criterion, info, **kw)
    if len(sets) == 1:
        return main
    per = {MAIN_VAL: main["psnr"]}
    for name, val in sets.items():
        if name != MAIN_VAL:
            per[name] = evaluate(model, val, criterion, info, **kw)["psnr"]
    out = {"loss": main["loss"], "psnr": float(np.mean(list(per.values())))}
    out.update({f"psnr[{name}]": v for name, v in per.items()})
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module,
    val: ValSet,
    criterion: CompositeLoss,
    info: DistInfo,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Validation loss and mean per-image PSNR (dB, on float [0, 1]; capped at 100 dB): the
    evaluation's PSNR (:func:`restoreae.psnr.psnr_per_image`).

    Batches are sharded over ranks and the sums all-reduced: every rank gets the same figures.
    """
    was_training = model.training
    was_parts = getattr(model, "return_parts", False)
    model.eval()
    if was_parts:
        model.return_parts = False  # validation scores the composite output
    sums = torch.zeros(3, dtype=torch.float64, device=info.device)  # loss*n, psnr sum, n
    n_batches = math.ceil(len(val) / val.batch_size)
    for b in range(info.rank, n_batches, info.world_size):
        sl = slice(b * val.batch_size, (b + 1) * val.batch_size)
        x = val.inputs[sl].to(info.device, non_blocking=True)
        y = val.targets[sl].to(info.device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(info.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        out = out.float()
        loss, _ = criterion(out, y)
        psnr = psnr_per_image(out, y, max_db=VAL_MAX_PSNR_DB)
        n = float(x.shape[0])
        sums[0] += loss.double() * n
        sums[1] += psnr.double().sum()
        sums[2] += n
    all_reduce_sum(sums, info)
    model.train(was_training)
    if was_parts:
        model.return_parts = True
    n = max(1.0, float(sums[2]))
    return {"loss": float(sums[0]) / n, "psnr": float(sums[1]) / n}


def _weights_for_eval(cfg: TrainConfig, checkpoint: Path | None) -> ModelSource:
    """``--resume`` of ``--eval-only`` (any ``.safetensors`` model spec; default: the config's
    run folder) → the weights to evaluate."""
    from restoreae.models.weights import resolve_weights

    source = resolve_weights(checkpoint if checkpoint is not None else cfg.output.run_dir)
    if source.format != "safetensors":
        raise ConfigError(f"--resume for --eval-only: '{source.path}' is not a .safetensors file")
    return source


def evaluate_checkpoint(cfg: TrainConfig, checkpoint: Path | None = None) -> dict[str, Any]:
    """Validation metrics of a checkpoint on ``data.val_split`` (the config's fixed val set).

    ``checkpoint``: a ``.safetensors`` file or a run folder (its best, else last weights);
    default ``output.run_dir``. Writes ``eval-<split>.json`` next to the run's weights folder.
    """
    from restoreae.models.io import load_model

    info = init_distributed(cfg.train.device)
    try:
        source = _weights_for_eval(cfg, checkpoint)
        path = source.path
        model, meta = load_model(path, device=info.device, arch=source.arch)
        in_chans = int(model.config.get("in_chans", meta.get("in_chans", 1)))
        if in_chans != cfg.in_chans:
            raise ConfigError(
                f"'{path}' takes {in_chans} input channels; data.use_reference="
                f"{cfg.data.use_reference} gives {cfg.in_chans} (in {cfg.source})"
            )
        damage = load_damage(cfg)
        val_sets = build_val_sets(cfg, damage, info.device)
        metrics = evaluate_sets(
            model, val_sets, build_loss(cfg.train.loss), info, amp_dtype=cfg.amp_dtype
        )
        result = {
            "weights": str(path),
            "split": cfg.data.val_split,
            "num": len(val_sets[MAIN_VAL]),
            "step": meta.get("step"),
            **metrics,
        }
        if info.is_main:
            out = path.parent.parent if path.parent.name == "weights" else path.parent
            atomic_write(
                out / f"eval-{cfg.data.val_split}.json",
                (json.dumps(result, indent=2) + "\n").encode("utf-8"),
            )
        return result
    finally:
        cleanup(info)
