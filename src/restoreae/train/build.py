"""The model and optimizer parameter groups of a training run: ``create_model`` from the config,
``output.init_from`` (widened input, added damage mask), AdamW groups, and the DDP probe for
parameters without gradients.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restoreae.errors import ConfigError
from restoreae.train.config import TrainConfig


def build_model(cfg: TrainConfig) -> nn.Module:
    """``create_model(model.name, in_chans, img_size, **model.kwargs)``; errors name the key."""
    from restoreae.models.registry import create_model

    try:
        return create_model(
            cfg.model.name,
            in_chans=cfg.in_chans,
            img_size=cfg.data.img_size,
            **cfg.model.kwargs,
        )
    except ConfigError as exc:
        raise ConfigError(f"model (in {cfg.source}): {exc}") from None


def init_weights_from(model: nn.Module, path: Path, cfg: TrainConfig) -> None:
    """Load ``output.init_from`` into ``model``, widening 1-channel weights to 2 channels and
    adding the damage-mask channel when a direct-output model starts a composite one."""
    from restoreae.models.io import add_damage_mask, load_model, widen_input

    src, _ = load_model(path, device="cpu")
    src_out = src.config.get("output", "direct")
    if src_out == "direct" and getattr(model, "output", "direct") == "composite":
        src = add_damage_mask(src)
    src_in = int(src.config.get("in_chans", 1))
    if src_in < cfg.in_chans:
        src = widen_input(src, in_chans=cfg.in_chans)
    elif src_in > cfg.in_chans:
        raise ConfigError(
            f"output.init_from: '{path}' takes {src_in} input channels but the config trains "
            f"{cfg.in_chans} (data.use_reference={cfg.data.use_reference}) (in {cfg.source})"
        )
    try:
        model.load_state_dict(src.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ConfigError(
            f"output.init_from: '{path}' ({src.config.get('name')}) does not fit model "
            f"'{cfg.model.name}': {str(exc).splitlines()[0]} (in {cfg.source})"
        ) from None


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weights; none on norms, biases, embeddings and tokens."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "token" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "apply_wd": True},
        {"params": no_decay, "apply_wd": False, "weight_decay": 0.0},
    ]


def unused_parameters(model: nn.Module, in_chans: int, img_size: int) -> list[str]:
    """Names of trainable parameters that get no gradient from a forward/backward pass.

    Probed on a copy of the model (batch of 2 random inputs, train mode) so the model's buffers
    and the global RNG are left untouched. DDP needs ``find_unused_parameters`` for these.
    """
    probe = copy.deepcopy(model).train()
    rng = torch.get_rng_state()
    try:
        p = next(probe.parameters())
        x = torch.rand(2, in_chans, img_size, img_size, device=p.device)
        probe(x).float().mean().backward()
    finally:
        torch.set_rng_state(rng)
    return [n for n, q in probe.named_parameters() if q.requires_grad and q.grad is None]
