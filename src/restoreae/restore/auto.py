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
4. A candidate's *confidence* is the weighted geometric mean
   ``proposal ** w * readback ** (1 - w)`` of its proposal probability (step 2) and its read-back
   probability, ``w = proposal_weight`` (default 0.5: the plain geometric mean). Read-back alone
   would reward a reference that makes the model draw its own character over a glyph that never
   looked like it (四 over a damaged 匹, 檀 over 擅, 吉 over 書), and could not tell 厨 from 廚 (a
   simplified-trained model gets both references drawn as 厨, so both read back alike); the
   proposal alone ignores what the restoration shows. The most confident candidate is kept when
   its confidence is at least ``min_confidence``; otherwise the first restoration (no reference)
   is kept and no character is chosen.

   Tuned on the font validation writers only (``benchmarks/tune_auto.py``: 600 glyphs of
   arphic-sungtil / arphic-ukai, as drawn and in the ``calligraphy`` style, seed damage): there
   ``w = 0.1``, ``min_confidence = 0.45`` did best (readability recovered 0.925 and the right
   character 81.8 %, against 0.908 / 80.2 % for the default; 0.881 without a reference, 0.979
   with the true character), by rescuing right candidates the recogniser proposed weakly but read
   back well. It did not carry over to the held-out sets (n = 300 each): font test writers as
   drawn 0.902 vs 0.890, but in the ``calligraphy`` style 0.853 vs 0.861 and real-dev 0.668 vs
   0.705 (below no reference, 0.684), where a wrong reference is followed more. So the default
   stays ``w = 0.5``, ``min_confidence = 0.5``; ``Restorer.picker(proposal_weight=0.1,
   min_confidence=0.45)`` selects the font-tuned rule (docs/RESULTS.md, "Any character").

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

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_TOP_K",
    "PROPOSAL_WEIGHT",
    "AutoRestoration",
    "CharChoice",
    "CharPicker",
    "Trials",
    "candidate_confidence",
]

#: Candidates tried per image.
DEFAULT_TOP_K = 5
#: Confidence (:func:`candidate_confidence`) a candidate needs to be kept (else: no reference).
DEFAULT_MIN_CONFIDENCE = 0.5
#: Weight of the proposal probability in the confidence (read-back: ``1 - PROPOSAL_WEIGHT``); the
#: validation writers preferred 0.1 (with ``min_confidence`` 0.45), which did not carry over to
#: held-out hands (see the module docstring), so the plain geometric mean stays.
PROPOSAL_WEIGHT = 0.5


@dataclass(frozen=True)
class CharChoice:
    """What ``auto`` chose for one image.

    ``char``: the character kept, or None when no candidate reached ``min_confidence`` (the image
    was then restored without a reference); ``confidence`` (0–1): :func:`candidate_confidence` of
    ``char``, from the recogniser's probability of ``char`` in the damaged glyph (or the first
    restoration) and its probability that the restoration with ``char``'s reference reads as
    ``char`` (for None: that of the best candidate, 0 when there was none); ``candidates``:
    ``(character, confidence)`` for every candidate tried, best first; ``font``: the font that
    drew the kept reference (None without one).
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


def candidate_confidence(
    p_damaged: np.ndarray,
    p_first: np.ndarray,
    readback: np.ndarray,
    proposal_weight: float = PROPOSAL_WEIGHT,
) -> np.ndarray:
    """float64 ``(J,)`` confidence (0–1) of ``J`` candidates from the recogniser's probabilities
    (each float ``(J,)`` in [0, 1]): that the damaged glyph reads as the candidate
    (``p_damaged``), that the first restoration (no reference) does (``p_first``), and that the
    restoration with the candidate's reference does (``readback``).

    ``proposal ** w * readback ** (1 - w)`` with the proposal ``max(p_damaged, p_first)`` and
    ``w = proposal_weight`` in [0, 1] (see the module docstring for why and what was measured).
    """
    if not 0.0 <= proposal_weight <= 1.0:
        raise ValueError(f"proposal_weight must be in [0, 1], got {proposal_weight}")
    prior = np.maximum(np.asarray(p_damaged, np.float64), np.asarray(p_first, np.float64))
    back = np.asarray(readback, np.float64)
    if prior.shape != back.shape:
        raise ValueError(f"probabilities of {prior.shape} and {back.shape} candidates")
    if np.any(prior < 0) or np.any(prior > 1) or np.any(back < 0) or np.any(back > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    return prior**proposal_weight * back ** (1.0 - proposal_weight)


@dataclass(frozen=True)
class Trials:
    """Every candidate tried for a batch of ``N`` glyphs: ``J`` (image, character) trials.

    ``image``: int64 ``(J,)``, the glyph each trial belongs to (trials of a glyph are contiguous,
    by ``max(p_damaged, p_first)`` best first); ``chars``: the ``J`` candidates; ``p_damaged``,
    ``p_first``, ``readback``: float64 ``(J,)`` probabilities in [0, 1] (see
    :func:`candidate_confidence`); ``restored``: float32 ``(J, K, S, S)`` model outputs in [0, 1]
    with each candidate's reference; ``first``: float32 ``(N, K, S, S)``, those without a
    reference (``K`` as :meth:`Restorer.run` gives it).
    """

    image: np.ndarray
    chars: list[str]
    p_damaged: np.ndarray
    p_first: np.ndarray
    readback: np.ndarray
    restored: np.ndarray
    first: np.ndarray


class CharPicker:
    """Chooses the character of glyphs with the recogniser and a :class:`Restorer`.

    ``k``: candidates per image; ``min_confidence``: confidence needed to keep one;
    ``proposal_weight``: the proposal's weight in :func:`candidate_confidence`;
    ``judge``: an :class:`~restoreae.evaluate.ocr.OcrJudge` (default: a new one; raises
    RestoreAEError naming ``restoreae[ocr]`` when the recogniser is not installed).
    """

    def __init__(
        self,
        restorer: Restorer,
        k: int = DEFAULT_TOP_K,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        judge=None,
        proposal_weight: float = PROPOSAL_WEIGHT,
    ) -> None:
        if k < 1:
            raise RestoreAEError(f"auto: k must be at least 1, got {k}")
        if not 0.0 <= min_confidence <= 1.0:
            raise RestoreAEError(f"auto: min_confidence must be in [0, 1], got {min_confidence}")
        if not 0.0 <= proposal_weight <= 1.0:
            raise RestoreAEError(f"auto: proposal_weight must be in [0, 1], got {proposal_weight}")
        if judge is None:
            from restoreae.evaluate.ocr import OcrJudge

            judge = OcrJudge()
        self.restorer = restorer
        self.k = int(k)
        self.min_confidence = float(min_confidence)
        self.proposal_weight = float(proposal_weight)
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
    ) -> list[list[tuple[str, float, float]]]:
        """Candidates per image, ``(char, p_damaged, p_first)`` by ``max(p_damaged, p_first)``
        best first: the ``k`` drawable CJK characters most probable as the one-character reading
        of the damaged glyph or of its first restoration (uint8 (S, S) each), with the
        recogniser's probability of each in both."""
        n = len(damaged)
        if n != len(first):
            raise ValueError(f"{n} damaged glyphs but {len(first)} first restorations")
        if n == 0:
            return []
        probs = self.judge.char_probabilities(list(damaged) + list(first))
        p_d, p_f = probs[:n], probs[n:]
        out = []
        for i in range(n):
            prior = np.maximum(p_d[i], p_f[i])
            picked: list[tuple[str, float, float]] = []
            for idx in np.argsort(-prior, kind="stable"):
                if len(picked) >= self.k or prior[idx] <= 0.0:
                    break
                ch = self.judge.alphabet[idx]
                if idx == 0 or idx == len(self.judge.alphabet) - 1 or not self._usable(ch):
                    continue
                picked.append((ch, float(p_d[i, idx]), float(p_f[i, idx])))
            out.append(picked)
        return out

    def trials(self, preps: Sequence[Prepared]) -> Trials:
        """Restore each prepared image without a reference, propose its candidates and restore
        it with each candidate's reference; the recogniser reads every restoration back."""
        r = self.restorer
        x0 = np.stack([r.model_input(p, None, use_reference=False) for p in preps])
        first = r.run(x0)
        damaged = [p.glyph for p in preps]
        first_u8 = [restored_glyph(f, p.glyph) for f, p in zip(first, preps, strict=True)]
        proposals = self.propose(damaged, first_u8)
        jobs = [(i, c) for i, cands in enumerate(proposals) for c, _, _ in cands]
        p_damaged = np.array([pd for cands in proposals for _, pd, _ in cands], np.float64)
        p_first = np.array([pf for cands in proposals for _, _, pf in cands], np.float64)
        readback = np.zeros(len(jobs))
        restored = np.zeros((0, *first.shape[1:]), np.float32)
        if jobs:
            x = np.stack([r.model_input(preps[i], c) for i, c in jobs])
            restored = r.run(x)  # (J, K, S, S): K = 2 (content, mask) for composite models
            forms = [{c, r.reference_glyph(c).drawn} for _, c in jobs]
            glyphs = [
                restored_glyph(y, preps[i].glyph) for y, (i, _) in zip(restored, jobs, strict=True)
            ]
            readback = self.judge.confidence(glyphs, forms)
        return Trials(
            image=np.array([i for i, _ in jobs], np.int64),
            chars=[c for _, c in jobs],
            p_damaged=p_damaged,
            p_first=p_first,
            readback=readback,
            restored=restored,
            first=first,
        )

    def pick(self, preps: Sequence[Prepared]) -> list[tuple[CharChoice, np.ndarray]]:
        """For each prepared image: the choice and the kept model output, float32 (K, S, S) in
        [0, 1] as :meth:`Restorer.run` gives it (pass it to :meth:`Restorer.finish`)."""
        r = self.restorer
        if not preps:
            return []
        if not r.uses_reference:  # nothing to try: report what the restoration reads as
            x0 = np.stack([r.model_input(p, None, use_reference=False) for p in preps])
            first = r.run(x0)
            first_u8 = [restored_glyph(f, p.glyph) for f, p in zip(first, preps, strict=True)]
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
        t = self.trials(preps)
        conf = candidate_confidence(t.p_damaged, t.p_first, t.readback, self.proposal_weight)
        out = []
        for i in range(len(preps)):
            mine = sorted(
                ((conf[j], c, j) for j, c in enumerate(t.chars) if t.image[j] == i),
                key=lambda v: -v[0],
            )
            cands = tuple((c, float(p)) for p, c, _ in mine)
            if mine and mine[0][0] >= self.min_confidence:
                p, c, j = mine[0]
                font = r.reference_glyph(c).font
                out.append((CharChoice(c, float(p), cands, font), t.restored[j]))
            else:
                best = float(mine[0][0]) if mine else 0.0
                out.append((CharChoice(None, best, cands, None), t.first[i]))
        return out
