"""Training batches: corpus glyph pairs, the resumable sampler, seeds, and the on-device batch.

Clean glyphs (uint8, white on black) and their reference glyphs come from the corpus by plain
array indexing; damage is applied on the training device in batches
(:class:`restoreae.damage.torch_ops.TorchDamage`). If the corpus size differs from
``data.img_size`` the batch is resized on the device (bilinear, antialiased) before damage.
Every random draw takes an explicit seed (:func:`derive_seed`) so a resumed run repeats an
uninterrupted one exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from restoreae.errors import ConfigError
from restoreae.train.config import TrainConfig

DAMAGE_TAG = 1  # derive_seed tags: one stream per use, never shared
DROPOUT_TAG = 2
VAL_TAG = 3


class GlyphPairs(Dataset):
    """``(clean, reference)`` uint8 tensors ``(S, S)`` (white on black) for a corpus split.

    The corpus is opened lazily in each process (workers re-open the memory map).
    """

    def __init__(self, corpus_path: str | Path, split: str) -> None:
        from restoreae.data.corpus import Corpus

        self.corpus_path = Path(corpus_path)
        self.split = split
        self._corpus: Any = Corpus.open(self.corpus_path)
        self.writers, self.chars = self._corpus.pairs(split)

    def _open(self) -> Any:
        if self._corpus is None:
            from restoreae.data.corpus import Corpus

            self._corpus = Corpus.open(self.corpus_path)
        return self._corpus

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_corpus"] = None
        return state

    def __len__(self) -> int:
        return len(self.writers)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        corpus = self._open()
        w, c = int(self.writers[i]), int(self.chars[i])
        clean = torch.from_numpy(np.array(corpus.glyphs[w, c], dtype=np.uint8))
        ref = torch.from_numpy(np.array(corpus.reference[c], dtype=np.uint8))
        return clean, ref


class ResumableSampler(Sampler[int]):
    """A DistributedSampler whose epoch can start after the first ``skip`` indices (resume)."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a deterministic function of the integer ``parts``."""
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
    return int(ss.generate_state(1, dtype=np.uint64)[0] & 0x7FFFFFFFFFFFFFFF)


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def to_float(x_u8: Tensor, device: torch.device, img_size: int) -> Tensor:
    """uint8 ``(B, S, S)`` → float ``(B, 1, img, img)`` in [0, 1] on ``device``."""
    x = x_u8.to(device, non_blocking=True).unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != img_size or x.shape[-2] != img_size:
        x = F.interpolate(
            x, size=(img_size, img_size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0.0, 1.0)
    return x


def make_batch(
    clean_u8: Tensor,
    ref_u8: Tensor,
    *,
    damage: Any,
    generator: torch.Generator,
    device: torch.device,
    img_size: int,
    use_reference: bool,
    reference_dropout: float = 0.0,
    reference_mismatch: float = 0.0,
    style: Any = None,
    clean_fraction: float = 0.0,
    reference_style: Any = None,
    reference_fit: bool = False,
) -> tuple[Tensor, Tensor]:
    """Model input ``(B, 1|2, H, W)`` (damaged [+ reference]) and target ``(B, 1, H, W)``.

    ``style`` (a :class:`~restoreae.damage.style.StyleTransform`) first turns the clean glyph into
    a synthetic writer's: the target is the styled glyph, the reference stays the font's.
    With ``clean_fraction`` q > 0, each sample is left undamaged with probability q, so the model
    learns to return an intact glyph unchanged ("do no harm").
    With ``reference_dropout`` p > 0, each sample's reference channel is zeroed with probability p
    (drawn from ``generator``), teaching the model to restore without a known character too.
    With ``reference_mismatch`` q > 0, each sample is given the next sample's reference instead of
    its own with probability q (a wrong character; the target is unchanged), so the model learns
    not to redraw a reference the damaged glyph contradicts.
    ``reference_style`` (a :class:`~restoreae.damage.style.StyleTransform`) restyles the
    reference, independently of the target (another hand's form of the same character).
    With ``reference_fit``, the (restyled, possibly wrong) reference is then fitted to the damaged
    glyph's ink box (:func:`~restoreae.data.reference_fit.fit_reference`), as restoration does.
    """
    clean = to_float(clean_u8, device, img_size)
    if style is not None:
        clean = style(clean, generator)
    damaged = damage(clean, generator)
    if clean_fraction > 0:
        intact = torch.rand(clean.shape[0], generator=generator, device=generator.device)
        intact = (intact < clean_fraction).to(device).view(-1, 1, 1, 1)
        damaged = torch.where(intact, clean, damaged)
    if use_reference:
        ref = to_float(ref_u8, device, img_size)
        if reference_style is not None:
            ref = reference_style(ref, generator)
        if reference_mismatch > 0:
            wrong = (
                torch.rand(ref.shape[0], generator=generator, device=device) < reference_mismatch
            )
            ref = torch.where(wrong.view(-1, 1, 1, 1), ref.roll(1, dims=0), ref)
        if reference_fit:
            from restoreae.data.reference_fit import fit_reference

            ref = fit_reference(ref, damaged)
        if reference_dropout > 0:
            keep = torch.rand(ref.shape[0], generator=generator, device=device) >= reference_dropout
            ref = ref * keep.view(-1, 1, 1, 1).to(ref.dtype)
        x = torch.cat([damaged, ref], dim=1)
    else:
        x = damaged
    return x, clean


def load_style(cfg: TrainConfig, key: str = "style") -> Any:
    """The batched synthetic-writer transform for ``data.style`` — or ``data.reference_style``
    with ``key="reference_style"`` — (or None)."""
    from restoreae.damage.style import build_style

    try:
        return build_style(getattr(cfg.data, key))
    except ConfigError as exc:
        raise ConfigError(f"data.{key} (in {cfg.source}): {exc}") from None


def load_damage(cfg: TrainConfig) -> Any:
    """The batched torch damage for ``data.damage``: one config (see
    :meth:`DamageConfig.resolve`) or a mix of several (:func:`resolve_mix`)."""
    from restoreae.damage.pipeline import resolve_mix
    from restoreae.damage.torch_ops import build_torch_damage

    return build_torch_damage(resolve_mix(cfg.data.damage, where=f"data.damage (in {cfg.source})"))
