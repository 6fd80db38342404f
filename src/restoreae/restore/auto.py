"""``char="auto"``: restore a character the user does not know.

The PP-OCRv4 recogniser (:class:`~restoreae.evaluate.ocr.OcrJudge`, the optional extra
``restoreae[ocr]``) proposes candidates and the restorer tries them:

1. The damaged glyph is restored once without a reference (empty reference channel).
2. The recogniser reads the damaged glyph and that first restoration; the ``k`` characters most
   probable as one-character readings of either (CTC probability, the larger of the two) that are
   CJK ideographs with a drawable reference are the candidates.
3. Each candidate's reference is drawn and the glyph restored with it; the recogniser reads each
   restoration back: the *read-back* probability that it reads as exactly that character (or the
   form its reference was drawn in, e.g. 书 for 書).
4. A candidate's *confidence* is the geometric mean of its proposal probability (step 2) and its
   read-back probability: a reference can make the model draw its own character convincingly over
   a glyph that never looked like it, so reading back alone would reward such hallucinations; the
   proposal alone ignores what the restoration shows. The most confident candidate is kept when its
   confidence is at least ``min_confidence``; otherwise the first restoration (no reference) is
   kept and no character is chosen.

Everything is batched: one model call for the first restorations, one for all candidates, two
recogniser calls; the model runs through the restorer's backend (ONNX Runtime or PyTorch). Glyphs
are the model's ``uint8`` (S, S), white ink on black.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from restoreae.errors import RestoreAEError

if TYPE_CHECKING:  # pragma: no cover
    from restoreae.restore.api import Restorer
    from restoreae.restore.preprocess import Prepared

__all__ = ["DEFAULT_MIN_CONFIDENCE", "DEFAULT_TOP_K", "AutoRestoration", "CharChoice", "CharPicker"]

#: Candidates tried per image.
DEFAULT_TOP_K = 5
#: Confidence (geometric mean of proposal and read-back) a candidate needs to be kept (else: no
#: reference).
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class CharChoice:
    """What ``auto`` chose for one image.

    ``char``: the character kept, or None when no candidate reached ``min_confidence`` (the image
    was then restored without a reference); ``confidence`` (0–1): the geometric mean of the
    recogniser's probability of ``char`` in the damaged glyph (or the first restoration) and its
    probability that the restoration with ``char``'s reference reads as ``char`` (for None: that of
    the best candidate, 0 when there was none); ``candidates``: ``(character, confidence)`` for
    every candidate tried, best first; ``font``: the font that drew the kept reference (None without one).
    """

    char: str | None
    confidence: float
    candidates: tuple[tuple[str, float], ...]
    font: str | None = None

    @property
    def best(self) -> str | None:
        """The most confident candidate, kept or not."""
        return self.candidates[0][0] if self.candidates else None

    def describe(self) -> str:
        """A short label: ``"auto: 永 (97%)"`` or ``"auto: none (best 水 31%)"``."""
        if self.char is not None:
            return f"auto: {self.char} ({100 * self.confidence:.0f}%)"
        if self.best is not None:
            return f"auto: none (best {self.best} {100 * self.confidence:.0f}%)"
        return "auto: none"


@dataclass(frozen=True)
class AutoRestoration:
    """The answer of ``Restorer.restore(image, char="auto")``.

    ``image``: the restored image, uint8 (H, W) in the input's size and polarity; ``char``,
    ``confidence``, ``candidates``, ``font``: as in :class:`CharChoice` (``choice``).
    """

    image: np.ndarray
    choice: CharChoice

    @property
    def char(self) -> str | None:
        return self.choice.char

    @property
    def confidence(self) -> float:
        return self.choice.confidence

    @property
    def candidates(self) -> tuple[tuple[str, float], ...]:
        return self.choice.candidates

    @property
    def font(self) -> str | None:
        return self.choice.font


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def restored_glyph(output: np.ndarray, damaged: np.ndarray) -> np.ndarray:
    """The model-space restored glyph of one model output, uint8 (S, S) white on black.

    ``output``: float (K, S, S) in [0, 1] (K = 1: the glyph; K = 2: content and mask, composed
    as ``mask * content + (1 - mask) * damaged``); ``damaged``: the uint8 (S, S) input glyph.
    """
    out = np.asarray(output, np.float32)
    if out.ndim == 2:
        return _to_uint8(out)
    if out.shape[0] == 2:
        x = np.asarray(damaged, np.float32) / 255.0
        return _to_uint8(out[1] * out[0] + (1.0 - out[1]) * x)
    return _to_uint8(out[0])


class CharPicker:
    """Chooses the character of glyphs with the recogniser and a :class:`Restorer`.

    ``k``: candidates per image; ``min_confidence``: confidence needed to keep one;
    ``judge``: an :class:`~restoreae.evaluate.ocr.OcrJudge` (default: a new one; raises
    RestoreAEError naming ``restoreae[ocr]`` when the recogniser is not installed).
    """

    def __init__(
        self,
        restorer: Restorer,
        k: int = DEFAULT_TOP_K,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        judge=None,
    ) -> None:
        if k < 1:
            raise RestoreAEError(f"auto: k must be at least 1, got {k}")
        if not 0.0 <= min_confidence <= 1.0:
            raise RestoreAEError(f"auto: min_confidence must be in [0, 1], got {min_confidence}")
        if judge is None:
            from restoreae.evaluate.ocr import OcrJudge

            judge = OcrJudge()
        self.restorer = restorer
        self.k = int(k)
        self.min_confidence = float(min_confidence)
        self.judge = judge

    def _usable(self, char: str) -> bool:
        from restoreae.restore.api import validate_char

        try:
            validate_char(char)
            if self.restorer.uses_reference:
                self.restorer.reference_glyph(char)
        except RestoreAEError:
            return False
        return True

    def propose(
        self, damaged: Sequence[np.ndarray], first: Sequence[np.ndarray]
    ) -> list[list[tuple[str, float]]]:
        """Candidates per image, ``(char, proposal probability)`` best first, from the damaged
        glyphs and their first restorations (uint8 (S, S) each; the larger probability counts)."""
        n = len(damaged)
        lists = self.judge.candidates(list(damaged) + list(first), k=self.k, accept=self._usable)
        out = []
        for i in range(n):
            score: dict[str, float] = {}
            for ch, p in lists[i] + lists[n + i]:
                score[ch] = max(score.get(ch, 0.0), p)
            best = sorted(score, key=lambda c: -score[c])[: self.k]
            out.append([(c, score[c]) for c in best])
        return out

    def pick(self, preps: Sequence[Prepared]) -> list[tuple[CharChoice, np.ndarray]]:
        """For each prepared image: the choice and the kept model output, float32 (K, S, S) in
        [0, 1] as :meth:`Restorer.run` gives it (pass it to :meth:`Restorer.finish`)."""
        r = self.restorer
        if not preps:
            return []
        x0 = np.stack([r.model_input(p, None, use_reference=False) for p in preps])
        first = r.run(x0)
        damaged = [p.glyph for p in preps]
        first_u8 = [restored_glyph(f, p.glyph) for f, p in zip(first, preps, strict=True)]
        if not r.uses_reference:  # nothing to try: report what the restoration reads as
            lists = self.judge.candidates(first_u8, k=self.k, accept=self._usable)
            out = []
            for i, cands in enumerate(lists):
                best = cands[0] if cands else None
                ok = best is not None and best[1] >= self.min_confidence
                choice = CharChoice(
                    best[0] if ok else None, best[1] if best else 0.0, tuple(cands), None
                )
                out.append((choice, first[i]))
            return out
        proposals = self.propose(damaged, first_u8)
        jobs = [(i, c) for i, cands in enumerate(proposals) for c, _ in cands]
        prior = np.array([p for cands in proposals for _, p in cands])
        conf = np.zeros(len(jobs))
        restored = np.zeros((len(jobs), 1, r.img_size, r.img_size), np.float32)
        if jobs:
            x = np.stack([r.model_input(preps[i], c) for i, c in jobs])
            restored = r.run(x)  # (J, K, S, S): K = 2 (content, mask) for composite models
            forms = [{c, r.reference_glyph(c).drawn} for _, c in jobs]
            glyphs = [
                restored_glyph(y, preps[i].glyph) for y, (i, _) in zip(restored, jobs, strict=True)
            ]
            readback = self.judge.confidence(glyphs, forms)
            conf = np.sqrt(prior * readback)
        out = []
        for i in range(len(preps)):
            mine = sorted(
                ((conf[j], c, j) for j, (ii, c) in enumerate(jobs) if ii == i),
                key=lambda t: -t[0],
            )
            cands = tuple((c, float(p)) for p, c, _ in mine)
            if mine and mine[0][0] >= self.min_confidence:
                p, c, j = mine[0]
                font = r.reference_glyph(c).font
                out.append((CharChoice(c, float(p), cands, font), restored[j]))
            else:
                best = float(mine[0][0]) if mine else 0.0
                out.append((CharChoice(None, best, cands, None), first[i]))
        return out
