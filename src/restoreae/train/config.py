"""Training configuration: nested dataclasses loaded from YAML with ``--set key=value`` overrides.

A config file has five sections (``data``, ``model``, ``optim``, ``train``, ``output``) plus an
optional ``description``. Every key is checked before training starts: an unknown key, a value of
the wrong type or a missing corpus folder raises :class:`~restoreae.errors.ConfigError` naming the
key and the file (or the override) it came from. See docs/TRAINING.md for the full reference.

The sections are the dataclasses below; parsing a mapping into them and the ``--set`` overrides
are :mod:`restoreae.train.config_parse`, the value checks :mod:`restoreae.train.config_check`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from restoreae.errors import ConfigError
from restoreae.train.config_check import validate_config
from restoreae.train.config_parse import apply_overrides, build_dataclass


@dataclass
class DataConfig:
    """Where the glyphs come from and how a training input is formed."""

    corpus: str = ""  # corpus folder (manifest.json, glyphs.npy, reference.npy)
    train_split: str = "train"
    val_split: str = "val"
    img_size: int = 128  # model input size; batches are resized on the device if the corpus differs
    use_reference: bool = True  # in_chans 2 (damaged + reference glyph) vs 1 (damaged only)
    # Damage: a preset, YAML path or inline dict, None (the seed's ops), or a mix of several,
    # {"mix": {spec: share}}: each sample damaged by one of them (damage.pipeline.resolve_mix).
    damage: str | dict | None = None
    # Share of training samples whose reference channel is blanked (all zeros), so that one model
    # restores both with and without a known character. Validation always keeps the reference.
    reference_dropout: float = 0.0
    # Share of training samples given another sample's reference (a wrong character), target
    # unchanged: the model learns not to redraw a reference the damaged glyph contradicts. Drawn
    # before reference_dropout (a wrong reference can then still be blanked).
    reference_mismatch: float = 0.0
    # Style transforms of the reference glyph itself (a preset, YAML path or inline mapping, as
    # data.style; None: the font's glyph as drawn), drawn independently of the target's: the
    # reference becomes another hand's form of the same character, so the model takes from it
    # which character it is, not the exact shape of its strokes.
    reference_style: str | dict | None = None
    # Fit the reference's ink box to the damaged glyph's (per axis scale and shift) before the
    # model sees it, in training and at restore time (weights metadata ``reference_fit: box``);
    # see restoreae.data.reference_fit.
    reference_fit: bool = False
    # Synthetic writers: style transforms of the clean target (preset "writers", YAML path,
    # inline mapping, or None); see restoreae.damage.style.
    style: str | dict | None = None
    # Share of training samples left undamaged, so intact glyphs come back unchanged.
    clean_fraction: float = 0.0


@dataclass
class ModelConfig:
    """A registered model name and extra keyword arguments for ``create_model``."""

    name: str = ""
    kwargs: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW, cosine LR with linear warm-up, cosine weight-decay schedule, accumulation, clipping."""

    lr: float = 4e-3
    lr_base_batch: int | None = None  # if set: lr *= total batch / lr_base_batch (linear scaling)
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    weight_decay_end: float | None = None  # None: constant weight decay
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 0  # optimizer steps; warmup_epochs is added on top
    warmup_epochs: float = 0.0
    grad_accum_steps: int = 1
    clip_grad: float | None = None  # max global gradient norm; None: no clipping


@dataclass
class TrainSection:
    """Loop length, batch, precision, EMA, loss, validation/logging/saving cadence, device."""

    epochs: int | None = None
    max_steps: int | None = None  # optimizer steps; caps `epochs` when both are given
    batch_size: int = 32  # per process, per micro-step
    seed: int = 0
    amp: str = "none"  # none | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    ema: float | None = None  # EMA decay (e.g. 0.999); its weights are what best/last export
    loss: str | dict = "mse"  # "mse", "l1+edge", "0.8*l1+0.2*ssim" or {"l1": 0.8, "ssim": 0.2}
    # Weight of the damage-mask BCE for composite models (model.kwargs.output: composite): the
    # mask is supervised with the pixels the damage changed. 0: no mask loss.
    mask_weight: float = 0.0
    # Outline tolerance of that mask (px at data.img_size): a change that is an outline moved by at
    # most this much is not marked (how hands vary, not damage to mark; see restoreae.train.losses.
    # damage_mask). 0: every changed pixel is marked.
    mask_tolerance: int = 0
    # What that tolerance forgives: "range" (a damaged value within the clean glyph's local range:
    # outline moves and blurs), "moved" (a value the clean glyph holds nearby: moves only),
    # "outline" (moved, and the clean value still held nearby: a thin stroke erased whole and a
    # stroke dimmed all over stay damage) or "stroke" (moved, unless a stroke or gap vanished:
    # no ink, or no paper, left within the tolerance where the clean glyph has it).
    mask_forgive: str = "range"
    # How the forgiven pixels enter the mask loss: "intact" (supervised as not damaged: the model
    # learns to leave every light weight change alone) or "unsupervised" (left out of the BCE: the
    # output loss alone says whether to restore them, so a weight change the model can tell from a
    # writer's is undone; measured in docs/RESULTS.md, "Forgiven outlines left to the output loss":
    # it also smooths real pen handwriting's grainy ink).
    mask_forgiven: str = "intact"
    # Composite models: weight of the output loss applied to the content c alone, on every pixel
    # (0: c is scored only through m * c, so it is free wherever the mask is 0; measured in
    # docs/RESULTS.md, "The content head supervised everywhere").
    content_weight: float = 0.0
    val_every: int | None = None  # optimizer steps; None: at the end of every epoch
    val_num: int = 256  # fixed seeded damaged validation glyphs
    val_batch_size: int | None = None  # None: batch_size
    # Extra validation sets, one per damage spec (preset, YAML, or "op:NAME": one seed op alone),
    # on the same glyphs; with any, the PSNR that selects checkpoints is the mean over all sets.
    val_damage: list[str] = field(default_factory=list)
    val_style: str | None = None  # style preset/YAML for the validation targets (as data.style)
    log_every: int = 10
    save_every_steps: int | None = None  # extra checkpoints between validations
    keep_best_k: int = 1  # weights/best-<step>.safetensors kept besides best.safetensors
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch CPU threads per process; None: torch's default
    find_unused_parameters: bool = False  # DDP option for models with unused branches
    progress: bool = True  # tqdm bar on rank 0


@dataclass
class OutputConfig:
    """The run folder and optional starting weights."""

    run_dir: str = ""  # default: runs/<config file stem>
    init_from: str | None = None  # .safetensors to start from (1-channel weights are widened)


@dataclass
class TrainConfig:
    """The whole training configuration (see docs/TRAINING.md)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainSection = field(default_factory=TrainSection)
    output: OutputConfig = field(default_factory=OutputConfig)
    description: str = ""
    # Where the config came from (a file path or "<dict>"); not a config key.
    source: str = field(default="<dict>", repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML-able data (``source`` left out)."""
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @property
    def in_chans(self) -> int:
        return 2 if self.data.use_reference else 1

    @property
    def amp_dtype(self) -> Any:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.train.amp)


# --------------------------------------------------------------------------- public API
def config_from_dict(
    raw: dict,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    source: str = "<dict>",
    check_paths: bool = True,
) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a mapping (plus override strings)."""
    import copy

    raw = copy.deepcopy(raw) if raw is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping of sections")
    raw = apply_overrides(raw, list(overrides), TrainConfig)
    cfg = build_dataclass(TrainConfig, raw, "", source + (" (with overrides)" if overrides else ""))
    cfg.source = source
    if not cfg.output.run_dir and source != "<dict>":
        cfg.output.run_dir = str(Path("runs") / Path(source).stem)
    validate_config(cfg, check_paths)
    return cfg


def load_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    check_paths: bool = True,
) -> TrainConfig:
    """Load a YAML training config, apply ``section.key=value`` overrides, validate everything.

    Relative paths in the config (corpus, damage file, run_dir, init_from) are relative to the
    current directory. Raises ConfigError naming the key and the file for any problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return config_from_dict(raw or {}, overrides, source=str(path), check_paths=check_paths)


# Keys that may differ between a run and its resumption (everything else must match).
RESUME_MUTABLE_KEYS = frozenset(
    {
        "description",
        "data.corpus",
        "optim.lr",
        "optim.min_lr",
        "optim.clip_grad",
        "train.amp",
        "train.epochs",
        "train.max_steps",
        "train.val_every",
        "train.log_every",
        "train.save_every_steps",
        "train.keep_best_k",
        "train.num_workers",
        "train.compile",
        "train.device",
        "train.threads",
        "train.progress",
        "train.val_batch_size",
        "output.run_dir",
        "output.init_from",
    }
)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and key.count(".") < 1:
            flat.update(_flatten(v, key))
        else:
            flat[key] = v
    return flat


def config_differences(saved: dict, current: dict, *, mutable: bool = False) -> list[str]:
    """Keys (``section.key``) whose values differ and are not allowed to change on resume
    (with ``mutable=True``: those that differ and are allowed to)."""
    a, b = _flatten(saved), _flatten(current)
    keys = sorted(set(a) | set(b))
    return [k for k in keys if (k in RESUME_MUTABLE_KEYS) == mutable and a.get(k) != b.get(k)]
