"""Evaluation sets, shared by ``restoreae eval`` (:mod:`restoreae.evaluate.runner`) and the
quality table (:mod:`restoreae.evaluate.quality`): which clean images, and how they are damaged.

- :func:`sample_pairs`: seeded (writer, char) pairs of a corpus split; :func:`font_set` /
  :func:`real_sets`: font and labelled real images as :class:`ImageSet`.
- :func:`make_conditions`: damage conditions (``none``, configs, single ops) as :class:`Condition`.
- :func:`damage_images`: image ``id`` of a set damaged under condition ``name`` with
  ``default_rng([seed, crc32(name), id, attempt])``, the next ``attempt`` (up to 8) drawn while
  the damage leaves it unchanged, so every evaluated image is really damaged.

Images are uint8 ``(s, s)``, white ink on black.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restoreae.errors import DataError, RestoreAEError

MAX_ATTEMPTS = 8
NONE = "none"


def sample_pairs(corpus: Any, split: str, num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num`` (writer idx, char idx) pairs of ``split`` drawn with ``seed``, sorted; all pairs
    when the split has fewer."""
    if num <= 0:
        raise RestoreAEError(f"--num must be positive, got {num}")
    writers, chars = corpus.pairs(split)
    writers = np.asarray(writers)
    chars = np.asarray(chars)
    if len(writers) == 0:
        raise DataError(f"split {split!r} of the corpus has no covered (writer, char) pairs")
    rng = np.random.default_rng(seed)
    if num < len(writers):
        idx = np.sort(rng.choice(len(writers), size=num, replace=False))
        writers, chars = writers[idx], chars[idx]
    order = np.lexsort((chars, writers))
    return writers[order], chars[order]


@dataclass
class ImageSet:
    """Clean ground truths of one set: ``images`` uint8 ``(s, s)`` white ink on black (sizes may
    differ), their ``chars``, accepted ``alts`` ("" for none), seeding ``ids`` and ``paths``
    (file, or ``writer/char`` for corpus glyphs)."""

    name: str
    source: str
    images: list[np.ndarray]
    chars: list[str]
    alts: list[str]
    ids: list[int]
    paths: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Condition:
    """A damage condition: ``name`` (``none``, a config name or an op name), ``config`` (a
    :class:`~restoreae.damage.pipeline.DamageConfig`, None for ``none``) and ``kind`` (``main``
    or ``op``)."""

    name: str
    config: Any
    kind: str = "main"
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- sets
def font_set(data: str | Path, split: str, num: int, seed: int) -> ImageSet:
    """``num`` (writer, char) glyphs of ``split`` of the corpus at ``data`` (see
    sample_pairs), as a set named ``font <split>``."""
    from restoreae.data.corpus import Corpus

    if not Path(data).is_dir():
        raise DataError(f"--data: corpus folder not found: {data}")
    corpus = Corpus.open(data)
    writers, chars = sample_pairs(corpus, split, num, seed)
    n_chars = len(corpus.chars)
    images = [
        np.ascontiguousarray(corpus.glyphs[w, c], dtype=np.uint8)
        for w, c in zip(writers, chars, strict=True)
    ]
    return ImageSet(
        name=f"font {split}",
        source=str(data),
        images=images,
        chars=[corpus.chars[c] for c in chars],
        alts=[""] * len(images),
        ids=[int(w) * n_chars + int(c) for w, c in zip(writers, chars, strict=True)],
        paths=[
            f"{corpus.writer_ids[w]}/{corpus.chars[c]}" for w, c in zip(writers, chars, strict=True)
        ],
        info={"writers": sorted({corpus.writer_ids[w] for w in writers})},
    )


def real_sets(path: str | Path, num: int | None, seed: int, prefix: str = "") -> list[ImageSet]:
    """The labelled images at ``path`` (see :func:`restoreae.evaluate.realset.load_labelled`),
    ``num`` per set, normalised; one :class:`ImageSet` per ``set`` value, named
    ``prefix + set``."""
    from restoreae.evaluate.realset import load_labelled, load_normalised, sample_items

    items = sample_items(load_labelled(path), num, seed)
    sets: dict[str, ImageSet] = {}
    for it in items:
        s = sets.get(it.set)
        if s is None:
            s = sets[it.set] = ImageSet(prefix + it.set, str(path), [], [], [], [], [])
        s.images.append(load_normalised(it))
        s.chars.append(it.char)
        s.alts.append(it.alt)
        s.ids.append(it.index)
        s.paths.append(str(it.path))
    return list(sets.values())


# --------------------------------------------------------------------------- damage
def _config_name(spec: str) -> str:
    return Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec


def make_conditions(damage: Sequence[str], per_op: Sequence[str]) -> list[Condition]:
    """``none``, one main condition per ``damage`` spec (preset or YAML) and one ``op`` condition
    per name in ``per_op`` (op parameters from the first config that sets them)."""
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.damage.registry import DAMAGE_OPS

    conds = [Condition(NONE, None, "main", {"ops": [], "k": 0})]
    configs = []
    for spec in damage:
        cfg = DamageConfig.resolve(spec, where="--damage")
        name = _config_name(spec)
        if any(c.name == name for c in conds):
            raise RestoreAEError(f"--damage: {spec!r} is given twice")
        d = cfg.to_dict()
        conds.append(Condition(name, cfg, "main", {"ops": d["ops"], "k": d["k"]}))
        configs.append(cfg)
    for op in per_op:
        DAMAGE_OPS.get_entry(op, where="--per-op-ops")
        cfg = next((c for c in configs if op in c.params), DamageConfig()).only(op)
        conds.append(Condition(op, cfg, "op", {"ops": [op], "k": 1}))
    return conds


def damage_images(
    images: Sequence[np.ndarray], ids: Sequence[int], config: Any, seed: int, name: str
) -> tuple[list[np.ndarray], list[list[str]]]:
    """Damage each uint8 ``(s, s)`` image with ``config``; image ``ids[i]`` uses
    ``default_rng([seed, crc32(name), ids[i], attempt])``, retried (up to 8 attempts) while the
    damage leaves it unchanged. Returns the damaged images and the ops applied to each."""
    from restoreae.damage.pipeline import DamagePipeline

    pipe = DamagePipeline(config)
    tag = zlib.crc32(name.encode("utf-8"))
    out: list[np.ndarray] = []
    applied: list[list[str]] = []
    for img, ident in zip(images, ids, strict=True):
        for attempt in range(MAX_ATTEMPTS):
            damaged, ops = pipe(img, np.random.default_rng([seed, tag, int(ident), attempt]))
            if not np.array_equal(damaged, img):
                break
        out.append(damaged)
        applied.append(list(ops))
    return out, applied
