"""Training configuration: nested dataclasses loaded from YAML with ``--set key=value`` overrides.

A config file has five sections (``data``, ``model``, ``optim``, ``train``, ``output``) plus an
optional ``description``. Every key is checked before training starts: an unknown key, a value of
the wrong type or a missing corpus folder raises :class:`~restoreae.errors.ConfigError` naming the
key and the file (or the override) it came from. See docs/TRAINING.md for the full reference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from restoreae.errors import ConfigError

AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class DataConfig:
    """Where the glyphs come from and how a training input is formed."""

    corpus: str = ""  # corpus folder (manifest.json, glyphs.npy, reference.npy)
    train_split: str = "train"
    val_split: str = "val"
    img_size: int = 128  # model input size; batches are resized on the device if the corpus differs
    use_reference: bool = True  # in_chans 2 (damaged + reference glyph) vs 1 (damaged only)
    damage: str | dict | None = None  # damage YAML path, inline dict, or None (the seed's ops)
    # Share of training samples whose reference channel is blanked (all zeros), so that one model
    # restores both with and without a known character. Validation always keeps the reference.
    reference_dropout: float = 0.0
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
    val_every: int | None = None  # optimizer steps; None: at the end of every epoch
    val_num: int = 256  # fixed seeded damaged validation glyphs
    val_batch_size: int | None = None  # None: batch_size
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


# --------------------------------------------------------------------------- type checking
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: must not be null (in {where})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(
            f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r} (in {where})"
        )
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(
                f"{key}: expected a list, got {type(value).__name__} {value!r} (in {where})"
            )
        return [_coerce(v, item_tp, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{key}: expected true/false, got {type(value).__name__} {value!r} (in {where})"
            )
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{key}: expected an integer, got {type(value).__name__} {value!r} (in {where})"
            )
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "4e-3" as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{key}: expected a number, got {type(value).__name__} {value!r} (in {where})"
            )
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(
                f"{key}: expected a string, got {type(value).__name__} {value!r} (in {where})"
            )
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(
                f"{key}: expected a mapping, got {type(value).__name__} {value!r} (in {where})"
            )
        return dict(value)
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # pragma: no cover


def _build(cls: type, raw: Any, prefix: str, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        name = prefix or "the config"
        raise ConfigError(f"{name}: expected a mapping, got {type(raw).__name__} (in {where})")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    kwargs = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = (
                f"; did you mean '{(prefix + '.') if prefix else ''}{close[0]}'?" if close else ""
            )
            raise ConfigError(f"unknown key '{full}' in {where}{hint} (known: {', '.join(names)})")
        tp = hints[key]
        if _is_dataclass_type(tp):
            kwargs[key] = _build(tp, value, full, where)
        else:
            kwargs[key] = _coerce(value, tp, full, where)
    return cls(**kwargs)


# --------------------------------------------------------------------------- overrides
def _check_override_path(parts: list[str], override: str) -> None:
    """Raise ConfigError if ``parts`` is not a key of TrainConfig (free-form dicts allowed)."""
    cls: Any = TrainConfig
    for i, part in enumerate(parts):
        full = ".".join(parts[: i + 1])
        if not _is_dataclass_type(cls):
            return  # inside a free-form mapping (model.kwargs, data.damage, train.loss)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
        if part not in names:
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean '{'.'.join(parts[:i] + [close[0]])}'?" if close else ""
            raise ConfigError(f"unknown key '{full}' in override '{override}'{hint}")
        tp = _hints(cls)[part]
        if _is_dataclass_type(tp):
            cls = tp
        elif dict in (typing.get_args(tp) or (tp,)):
            cls = dict
        elif i < len(parts) - 1:
            raise ConfigError(f"'{full}' is not a section (in override '{override}')")


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw config mapping."""
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override '{override}' must look like section.key=value")
        key, _, text = override.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override '{override}' has an empty key")
        _check_override_path(parts, override)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{override}': value is not valid YAML ({exc})") from None
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else child
                if not isinstance(child, dict):
                    child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return raw


# --------------------------------------------------------------------------- validation
def _check_damage(spec: str | dict | None, where: str) -> None:
    """``data.damage``: resolved by :meth:`DamageConfig.resolve` (preset, YAML file, mapping)."""
    from restoreae.damage.pipeline import DamageConfig

    DamageConfig.resolve(spec, where=f"data.damage (in {where})")


def _validate(cfg: TrainConfig, check_paths: bool) -> None:
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
        _check_damage(d.damage, where)
        if out.init_from and not Path(out.init_from).is_file():
            raise bad("output.init_from", f"weights file '{out.init_from}' not found")
    if d.img_size < 8:
        raise bad("data.img_size", f"must be >= 8, got {d.img_size}")
    if not 0.0 <= d.reference_dropout < 1.0:
        raise bad("data.reference_dropout", f"must be in [0, 1), got {d.reference_dropout}")
    if not 0.0 <= d.clean_fraction < 1.0:
        raise bad("data.clean_fraction", f"must be in [0, 1), got {d.clean_fraction}")
    if d.style is not None:
        from restoreae.damage.style import StyleConfig

        try:
            StyleConfig.resolve(d.style)
        except ConfigError as exc:
            raise bad("data.style", str(exc)) from None
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
    from restoreae.train.losses import parse_loss_spec

    try:
        parse_loss_spec(t.loss)
    except ValueError as exc:
        raise bad("train.loss", str(exc)) from None
    if not out.run_dir:
        raise bad("output.run_dir", "the run folder is required")


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
    raw = apply_overrides(raw, list(overrides))
    cfg = _build(TrainConfig, raw, "", source + (" (with overrides)" if overrides else ""))
    cfg.source = source
    if not cfg.output.run_dir and source != "<dict>":
        cfg.output.run_dir = str(Path("runs") / Path(source).stem)
    _validate(cfg, check_paths)
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
