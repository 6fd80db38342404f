"""Model weights on disk (safetensors, no pickle), input widening, parameter and FLOP counts.

File format: a safetensors file holding the model's ``state_dict`` (float tensors as saved, on
CPU) and three header metadata strings: ``format`` (``"restoreae-model-1"``), ``config`` (JSON of
``model.config``, so ``create_model(**config)`` rebuilds the architecture) and ``metadata`` (JSON
of the caller's dict, e.g. ``img_size``, ``in_chans``, ``reference_font``,
``reference_face_index``, ``traditional``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from restoreae.errors import DataError, RestoreAEError
from restoreae.models.checks import check_config, check_metadata
from restoreae.models.registry import REDEFINED, create_model, upgrade_config
from restoreae.utils import atomic_write

FORMAT = "restoreae-model-1"


def save_model(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``model``'s weights, ``model.config`` and ``metadata`` to ``path`` atomically.

    ``metadata`` must be JSON-serialisable. Returns the path written.
    """
    config = getattr(model, "config", None)
    if not config or "name" not in config:
        raise ValueError("model has no .config with a 'name'; build it with create_model()")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "config": json.dumps(config, sort_keys=True),
        "metadata": json.dumps(metadata or {}, sort_keys=True, ensure_ascii=False),
    }
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def _string_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file; DataError if missing or unreadable."""
    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable safetensors model file ({exc})") from None


def read_header(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(config, metadata)`` stored in a model file, without loading the weights."""
    path = Path(path)
    header = _string_metadata(path)
    if header.get("format") != FORMAT:
        raise DataError(
            f"{path}: not a restoreae model file (header format={header.get('format')!r})"
        )
    try:
        config = json.loads(header["config"])
        metadata = json.loads(header.get("metadata", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: corrupt model header ({exc})") from None
    if not isinstance(config, dict) or "name" not in config:
        raise DataError(f"{path}: model header 'config' has no model name")
    return check_config(config, str(path)), check_metadata(metadata, str(path))


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a Mapping
                state[key] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read weights ({exc})") from None
    return state


def _load_arch(path: Path, arch: str) -> tuple[nn.Module, dict]:
    """``ARCH:FILE``: rebuild ``arch`` for a restoreae file or a bare ``state_dict`` file.

    A restoreae file must hold ``arch`` and loads as usual. A bare file's input channels are
    found by fitting 2, then 1; its ``img_size`` comes from the file's string metadata
    ``img_size`` when present, else 224.
    """
    header = _string_metadata(path)
    if header.get("format") == FORMAT:
        config, _ = read_header(path)
        if config["name"] != arch:
            raise DataError(f"{arch}:{path}: the file holds model {config['name']!r}, not {arch!r}")
        return load_model(path)
    try:
        size = int(header.get("img_size", 224))
    except ValueError:
        raise DataError(
            f"{path}: metadata img_size={header['img_size']!r} is not an integer"
        ) from None
    state = _read_state(path)
    last = ""
    for in_chans in (2, 1):
        try:
            model = create_model(arch, in_chans=in_chans, img_size=size)
        except RestoreAEError as exc:
            raise DataError(f"{arch}:{path}: {exc}") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            last = str(exc).splitlines()[0]
            continue
        return model.eval(), {"img_size": size, "in_chans": in_chans}
    raise DataError(f"{path}: weights do not fit model {arch!r} (in_chans 2 or 1): {last}")


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", arch: str | None = None
) -> tuple[nn.Module, dict]:
    """Load a file written by :func:`save_model` → ``(model in eval mode on device, metadata)``.

    ``arch``: a registered model name (the ``ARCH:FILE`` model spec): the file may then also be a
    bare ``state_dict`` safetensors file, and must hold that architecture. Raises ``DataError``
    (naming the file) for a missing, corrupt or foreign file, an unknown model name or weights
    that do not fit the architecture.
    """
    path = Path(path)
    if arch is not None:
        model, metadata = _load_arch(path, arch)
        return model.to(device).eval(), metadata
    config, metadata = read_header(path)
    config = upgrade_config(config)
    try:
        model = create_model(**config)
    except RestoreAEError as exc:
        raise DataError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise DataError(f"{path}: bad model config {config!r} ({exc})") from None
    state = _read_state(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = str(exc).splitlines()[0]
        model = _load_redefined(config, state)
        if model is None:
            raise DataError(
                f"{path}: weights do not match model {config['name']!r}: {msg}"
            ) from None
    return model.to(device).eval(), metadata


def _load_redefined(config: dict, state: dict[str, torch.Tensor]) -> nn.Module | None:
    """Weights saved before ``config['name']`` was redefined: the model they fit, or None."""
    new_name = REDEFINED.get(config["name"])
    if new_name is None:
        return None
    config = upgrade_config({**config, "name": new_name})
    try:
        model = create_model(**config)
        model.load_state_dict(state, strict=True)
    except (RestoreAEError, RuntimeError, TypeError):
        return None
    return model


def average_models(
    paths: list[str | os.PathLike], weights: list[float] | None = None
) -> tuple[nn.Module, dict]:
    """Weighted average of the weights of models of one architecture (a "model soup").

    Meant for fine-tunes of one parent that trade one quality against another (e.g. `faithful`
    v7: a mask-tolerant and a plain fine-tune of v6): the average usually lands between them.
    ``weights`` (default equal) must be ≥ 0 and are normalised to sum to 1; floating-point
    tensors (parameters and batch-norm statistics) are averaged in float64 and stored in their
    own dtype, integer buffers (``num_batches_tracked``) are taken from the first model. Returns
    ``(model in eval mode on CPU, metadata)``: the first file's metadata with ``averaged_from``
    (file names and normalised weights) and without its ``val_*`` figures, which no longer hold.
    Raises ``DataError`` naming the file whose architecture or tensors differ from the first's.
    """
    if len(paths) < 2:
        raise ValueError(f"average_models needs at least 2 models, got {len(paths)}")
    w = [1.0] * len(paths) if weights is None else [float(x) for x in weights]
    if len(w) != len(paths):
        raise ValueError(f"{len(w)} weights for {len(paths)} models")
    if any(x < 0 or not math.isfinite(x) for x in w) or sum(w) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {w}")
    w = [x / sum(w) for x in w]
    first, metadata = load_model(paths[0])
    state = first.state_dict()
    acc = {k: v.double() * w[0] for k, v in state.items() if v.is_floating_point()}
    for path, wi in zip(paths[1:], w[1:], strict=True):
        other = load_model(path)[0]
        if other.config != first.config:  # one config, one architecture: the same tensor shapes
            raise DataError(
                f"{path}: model {other.config} differs from {paths[0]}'s {first.config}; "
                "only models of one architecture can be averaged"
            )
        other_state = other.state_dict()
        for k in acc:
            acc[k] += other_state[k].double() * wi
    first.load_state_dict(
        {k: acc[k].to(v.dtype) if k in acc else v for k, v in state.items()}, strict=True
    )
    meta = {k: v for k, v in metadata.items() if not k.startswith("val_")}
    meta["averaged_from"] = [
        {"file": Path(p).name, "weight": round(x, 6)} for p, x in zip(paths, w, strict=True)
    ]
    return first.eval(), meta


def average_to_file(
    paths: list[str | os.PathLike], out: str | os.PathLike, weights: list[float] | None = None
) -> Path:
    """:func:`average_models` of ``paths`` written to ``out`` (atomically); returns ``out``."""
    model, metadata = average_models(paths, weights)
    return save_model(model, out, metadata)


def widen_input(model: nn.Module, in_chans: int = 2, init_std: float = 0.0) -> nn.Module:
    """Return a copy of ``model`` taking ``in_chans`` input channels (pretrain → fine-tune).

    Every weight whose input-channel dimension grows (the first conv / patch embedding, the
    U-Net full-resolution input skip) keeps the old channels' weights; the new channels get
    ``N(0, init_std)`` (default exactly 0), so with ``init_std=0`` the widened model's output
    equals the old one's whatever the new (reference) channel holds — in particular when it is
    zero. The copy is in the same mode (train/eval) and on the same device as ``model``.
    """
    config = dict(getattr(model, "config", {}) or {})
    if "name" not in config:
        raise ValueError("model has no .config with a 'name'; build it with create_model()")
    old_in = int(config["in_chans"])
    if in_chans < old_in:
        raise ValueError(f"widen_input: cannot narrow {old_in} → {in_chans} channels")
    config["in_chans"] = in_chans
    new = create_model(**config)

    def grow(key: str, old_t: torch.Tensor, new_t: torch.Tensor) -> torch.Tensor:
        # The image channels sit alone (stem conv, patch embedding) or at the end of a
        # concatenation (U-Net image skip), possibly space-to-depth'd (k sub-pixels per channel).
        extra = new_t.shape[1] - old_t.shape[1] if new_t.dim() == old_t.dim() >= 2 else 0
        k = extra // (in_chans - old_in) if in_chans > old_in else 0
        fits = (
            old_t.dim() >= 2
            and k >= 1
            and extra == k * (in_chans - old_in)
            and old_t.shape[0] == new_t.shape[0]
            and old_t.shape[2:] == new_t.shape[2:]
            and old_t.shape[1] >= k * old_in
        )
        if not fits:
            raise ValueError(
                f"widen_input: unexpected shape change for {key}: "
                f"{tuple(old_t.shape)} → {tuple(new_t.shape)}"
            )
        w = torch.zeros_like(new_t, dtype=old_t.dtype)
        if init_std > 0:
            w.normal_(0.0, init_std)
        offset = old_t.shape[1] - k * old_in  # channels before the image channels
        w[:, :offset] = old_t[:, :offset]
        w[:, offset : offset + k * old_in] = old_t[:, offset:]
        return w

    return _carry_weights(model, new, grow)


def for_inference(model: nn.Module) -> nn.Module:
    """``model`` in eval mode, giving what the restore path consumes: ``(B, 1, S, S)`` restored
    glyphs, or for composite models ``(B, 2, S, S)`` = (content, restoration mask), so that the
    restore path can composite at the image's own resolution. Returns the same module."""
    model.eval()
    if getattr(model, "output", "direct") == "composite":
        model.return_parts = True
    return model


def add_damage_mask(model: nn.Module, mask_bias: float = -2.0) -> nn.Module:
    """Return a composite copy of a direct-output ``model`` (see ``RestoreNet``'s ``output``).

    Every weight is kept; the head's output convolution gains the mask channel(s) with zero
    weights and bias ``mask_bias``, so the copy starts as ``m * old_output + (1 - m) * input``
    with ``m = sigmoid(mask_bias)`` everywhere (0.12 by default) and learns the mask from there.
    """
    config = dict(getattr(model, "config", {}) or {})
    if "name" not in config:
        raise ValueError("model has no .config with a 'name'; build it with create_model()")
    if config.get("output", "direct") != "direct":
        raise ValueError(f"add_damage_mask: model output is already {config['output']!r}")
    config["output"] = "composite"
    try:
        new = create_model(**config)
    except Exception as exc:  # noqa: BLE001 - a model family without the ``output`` argument
        raise ValueError(
            f"add_damage_mask: model {config['name']!r} has no composite form ({exc})"
        ) from None

    def grow(key: str, old_t: torch.Tensor, new_t: torch.Tensor) -> torch.Tensor:
        if not (new_t.shape[0] == 2 * old_t.shape[0] and new_t.shape[1:] == old_t.shape[1:]):
            raise ValueError(
                f"add_damage_mask: unexpected shape change for {key}: "
                f"{tuple(old_t.shape)} → {tuple(new_t.shape)}"
            )
        # The head's output conv: (content sub-pixels, mask sub-pixels) channel blocks.
        n = old_t.shape[0]
        w = torch.zeros_like(new_t, dtype=old_t.dtype)
        w[:n] = old_t
        if new_t.dim() == 1:
            w[n:] = mask_bias
        return w

    return _carry_weights(model, new, grow)


def _carry_weights(
    model: nn.Module,
    new: nn.Module,
    grow: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor],
) -> nn.Module:
    """Load ``model``'s weights into the larger ``new``: same-shaped tensors are copied, the others
    come from ``grow(key, old, new_default)``. Returns ``new`` on ``model``'s device and mode."""
    old_state = model.state_dict()
    new_state = new.state_dict()
    for key, new_t in new_state.items():
        old_t = old_state[key]
        new_state[key] = old_t.clone() if old_t.shape == new_t.shape else grow(key, old_t, new_t)
    new.load_state_dict(new_state, strict=True)
    p = next(model.parameters())
    return new.to(p.device).train(model.training)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def gflops(model: nn.Module, img_size: int = 224, in_chans: int | None = None) -> float:
    """Forward GFLOPs for one ``img_size × img_size`` image (batch 1, eval mode, no grad).

    Counted with ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add as 2
    FLOPs: GFLOPs = 2 · MACs / 1e9 (convolutions, matmuls, attention; element-wise ops ignored).
    """
    from torch.utils.flop_counter import FlopCounterMode

    if in_chans is None:
        in_chans = int(getattr(model, "config", {}).get("in_chans", 2))
    p = next(model.parameters())
    x = torch.zeros(1, in_chans, img_size, img_size, device=p.device, dtype=p.dtype)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9
