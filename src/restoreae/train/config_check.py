"""Value checks of a training config: ranges, choices, and that the files it names exist.

The types were checked when the config was built (:mod:`restoreae.train.config_parse`); this
module checks what a type cannot say (``optim.lr > 0``, ``train.amp`` one of ``none|bf16|fp16``,
a known loss, a resolvable damage or style spec, an existing corpus folder). Every error is a
:class:`~restoreae.errors.ConfigError` naming the key and the file the config came from.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from restoreae.errors import ConfigError

if TYPE_CHECKING:
    from restoreae.train.config import TrainConfig

AMP_MODES = ("none", "bf16", "fp16")


def _check_damage(spec: str | dict | None, key: str, where: str) -> None:
    """A damage spec (``data.damage``, an entry of ``train.val_damage``): resolved by
    :meth:`DamageConfig.resolve` (preset, ``op:NAME``, YAML file, mapping)."""
    from restoreae.damage.pipeline import DamageConfig

    DamageConfig.resolve(spec, where=f"{key} (in {where})")


def validate_config(cfg: TrainConfig, check_paths: bool = True) -> None:
    """Check every value of ``cfg`` (ranges, choices, the loss spec, the damage and style specs);
    with ``check_paths`` also that the corpus folder, damage file and ``init_from`` exist.
    Raises ConfigError naming the key and ``cfg.source``."""
    where = cfg.source
    d, m, o, t, out = cfg.data, cfg.model, cfg.optim, cfg.train, cfg.output

    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{key}: {msg} (in {where})")

    if not d.corpus:
        raise bad("data.corpus", "the corpus folder is required")
    if check_paths:
        corpus = Path(d.corpus)
        if not corpus.is_dir():
            raise bad("data.corpus", f"corpus folder '{corpus}' not found")
        if not (corpus / "manifest.json").is_file():
            raise bad("data.corpus", f"'{corpus}' has no manifest.json (not a corpus folder)")
        from restoreae.damage.pipeline import resolve_mix

        resolve_mix(d.damage, where=f"data.damage (in {where})")
        for i, spec in enumerate(t.val_damage):
            _check_damage(spec, f"train.val_damage[{i}]", where)
        if out.init_from and not Path(out.init_from).is_file():
            raise bad("output.init_from", f"weights file '{out.init_from}' not found")
    if d.img_size < 8:
        raise bad("data.img_size", f"must be >= 8, got {d.img_size}")
    if not 0.0 <= d.reference_dropout < 1.0:
        raise bad("data.reference_dropout", f"must be in [0, 1), got {d.reference_dropout}")
    if not 0.0 <= d.reference_mismatch < 1.0:
        raise bad("data.reference_mismatch", f"must be in [0, 1), got {d.reference_mismatch}")
    if d.reference_fit and not d.use_reference:
        raise bad("data.reference_fit", "needs data.use_reference: true (there is no reference)")
    if not 0.0 <= d.clean_fraction < 1.0:
        raise bad("data.clean_fraction", f"must be in [0, 1), got {d.clean_fraction}")
    for key, style in (
        ("data.style", d.style),
        ("data.reference_style", d.reference_style),
        ("train.val_style", t.val_style),
    ):
        if style is not None:
            from restoreae.damage.style import StyleConfig

            try:
                StyleConfig.resolve(style)
            except ConfigError as exc:
                raise bad(key, str(exc)) from None
    if len(set(t.val_damage)) != len(t.val_damage):
        raise bad("train.val_damage", f"lists a damage twice: {t.val_damage}")
    if not m.name:
        raise bad("model.name", "a registered model name is required")
    for key in ("in_chans", "img_size"):
        if key in m.kwargs:
            raise bad(
                f"model.kwargs.{key}",
                "is set from data.use_reference / data.img_size; remove it from model.kwargs",
            )
    if not (o.lr > 0 and math.isfinite(o.lr)):
        raise bad("optim.lr", f"must be a positive number, got {o.lr}")
    if o.min_lr < 0:
        raise bad("optim.min_lr", f"must be >= 0, got {o.min_lr}")
    if o.weight_decay < 0 or (o.weight_decay_end is not None and o.weight_decay_end < 0):
        raise bad("optim.weight_decay", "must be >= 0")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise bad("optim.betas", f"must be two numbers in [0, 1), got {o.betas}")
    if o.warmup_steps < 0 or o.warmup_epochs < 0:
        raise bad("optim.warmup_steps", "warm-up must be >= 0")
    if o.grad_accum_steps < 1:
        raise bad("optim.grad_accum_steps", f"must be >= 1, got {o.grad_accum_steps}")
    if o.clip_grad is not None and o.clip_grad <= 0:
        raise bad("optim.clip_grad", f"must be > 0 or null, got {o.clip_grad}")
    if o.lr_base_batch is not None and o.lr_base_batch < 1:
        raise bad("optim.lr_base_batch", f"must be >= 1 or null, got {o.lr_base_batch}")
    if t.epochs is None and t.max_steps is None:
        raise bad("train.epochs", "give train.epochs or train.max_steps")
    if t.epochs is not None and t.epochs < 1:
        raise bad("train.epochs", f"must be >= 1, got {t.epochs}")
    if t.max_steps is not None and t.max_steps < 1:
        raise bad("train.max_steps", f"must be >= 1, got {t.max_steps}")
    if t.batch_size < 1:
        raise bad("train.batch_size", f"must be >= 1, got {t.batch_size}")
    if t.amp not in AMP_MODES:
        raise bad("train.amp", f"must be one of {', '.join(AMP_MODES)}, got {t.amp!r}")
    if t.ema is not None and not 0 < t.ema < 1:
        raise bad("train.ema", f"EMA decay must be in (0, 1) or null, got {t.ema}")
    for key in ("val_every", "save_every_steps", "val_batch_size"):
        v = getattr(t, key)
        if v is not None and v < 1:
            raise bad(f"train.{key}", f"must be >= 1 or null, got {v}")
    for key in ("val_num", "log_every", "keep_best_k"):
        if getattr(t, key) < 1:
            raise bad(f"train.{key}", f"must be >= 1, got {getattr(t, key)}")
    if t.threads is not None and t.threads < 1:
        raise bad("train.threads", f"must be >= 1 or null, got {t.threads}")
    if t.num_workers < 0:
        raise bad("train.num_workers", f"must be >= 0, got {t.num_workers}")
    dev = t.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise bad("train.device", f"must be auto, cpu, cuda or cuda:N, got {dev!r}")
    if t.mask_weight < 0:
        raise bad("train.mask_weight", f"must be >= 0, got {t.mask_weight}")
    if t.content_weight < 0:
        raise bad("train.content_weight", f"must be >= 0, got {t.content_weight}")
    if t.content_weight > 0 and t.mask_weight == 0:
        raise bad("train.content_weight", "needs a composite model trained with mask_weight > 0")
    if t.mask_tolerance < 0:
        raise bad("train.mask_tolerance", f"must be >= 0, got {t.mask_tolerance}")
    from restoreae.train.losses import MASK_FORGIVE, MASK_FORGIVEN, parse_loss_spec

    if t.mask_forgive not in MASK_FORGIVE:
        raise bad("train.mask_forgive", f"must be one of {MASK_FORGIVE}, got {t.mask_forgive!r}")
    if t.mask_forgiven not in MASK_FORGIVEN:
        raise bad("train.mask_forgiven", f"must be one of {MASK_FORGIVEN}, got {t.mask_forgiven!r}")

    try:
        parse_loss_spec(t.loss)
    except ValueError as exc:
        raise bad("train.loss", str(exc)) from None
    if not out.run_dir:
        raise bad("output.run_dir", "the run folder is required")
