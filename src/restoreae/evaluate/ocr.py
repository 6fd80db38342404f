"""An independent readability judge: PP-OCRv4 text recognition from ``rapidocr_onnxruntime``.

Only the recognition network is used (no detection, no angle classifier): a glyph image is one
"text line" of one character. The ONNX model and its character dictionary ship inside the
``rapidocr_onnxruntime==1.4.4`` wheel, so nothing is downloaded; inference runs with ONNX Runtime
on the CPU.

Preprocessing of a glyph (uint8 ``(H, W)``, white ink on black, the project's polarity):
invert to black ink on white, pad a white margin of :data:`MARGIN` × the glyph's side on every side,
resize (area interpolation) to :data:`LINE_HEIGHT` = 48 px high — the recogniser's input height —
and replicate to 3 channels. The recogniser then pads the line to its input width (PaddleOCR's
standard 48×320 by default; ``line_width=48`` is ~5× faster and reads clean glyphs about as well,
but 320 is the recogniser as shipped and the figures in docs/RESULTS.md use it).

Scoring (:meth:`OcrJudge.accuracy`): a glyph counts as read correctly when the recognised string,
with whitespace, punctuation, symbols and control characters removed, is exactly the expected character. A reading of
two characters where one is right counts as wrong: the judge must see one character, the right one.

Character probabilities (:meth:`OcrJudge.char_probabilities`): the recogniser is a CTC model; its
output is a per-position distribution over its alphabet plus a blank. For a glyph, the probability
that it reads as exactly one character *c* is the CTC probability of the one-label string *c*
(all paths blank* c+ blank*), computed for every *c* at once. :meth:`OcrJudge.candidates` ranks
characters by it (top-k) and :meth:`OcrJudge.confidence` reads it for given characters; both serve
``char="auto"`` restoration (:mod:`restoreae.restore.auto`).

The recogniser is the optional extra ``restoreae[ocr]`` (``pip install 'restoreae[ocr]'``);
without it, constructing :class:`OcrJudge` raises a :class:`~restoreae.errors.RestoreAEError`
that says so.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "OcrJudge",
    "ocr_available",
    "normalize_reading",
    "single_char_ctc",
    "LINE_HEIGHT",
    "MARGIN",
]

LINE_HEIGHT = 48
MARGIN = 0.15


def normalize_reading(text: str) -> str:
    """Drop punctuation (P*), symbols (S*), separators/whitespace (Z*) and control characters (C*)
    from an OCR reading."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


#: What to install when the recogniser is missing.
INSTALL_HINT = "pip install 'restoreae[ocr]' (it installs rapidocr_onnxruntime==1.4.4)"


def ocr_available() -> bool:
    """Whether the recogniser (the optional extra ``restoreae[ocr]``) is installed; imports
    nothing."""
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _package_dir() -> Path:
    try:
        import rapidocr_onnxruntime
    except ImportError as exc:
        from restoreae.errors import RestoreAEError

        raise RestoreAEError(
            "the character recogniser (PP-OCRv4 from rapidocr_onnxruntime, the optional extra "
            f"restoreae[ocr]) is not installed: {INSTALL_HINT}"
        ) from exc
    return Path(rapidocr_onnxruntime.__file__).resolve().parent


def single_char_ctc(probs: np.ndarray) -> np.ndarray:
    """CTC probability of each one-character reading.

    ``probs``: float ``(T, C)``, per-position class probabilities (class 0 = blank). Returns float64
    ``(C,)``: entry ``c`` (c ≥ 1) is the total probability of the paths blank* c+ blank* (entry 0
    is 0). Values lie in [0, 1] and sum to at most 1.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"expected (T, C) probabilities with C >= 2, got shape {p.shape}")
    blank = p[:, 0]
    all_blank = 1.0  # P(positions before t are all blank)
    in_char = np.zeros(p.shape[1])  # P(prefix = blank* c+), per c
    after = np.zeros(p.shape[1])  # P(prefix = blank* c+ blank+), per c
    for t in range(p.shape[0]):
        in_char, after = (in_char + all_blank) * p[t], (after + in_char) * blank[t]
        all_blank *= blank[t]
    out = in_char + after
    out[0] = 0.0
    return out


class OcrJudge:
    """Reads single glyph images with PP-OCRv4 recognition.

    ``batch_size``: images per ONNX Runtime call; ``threads``: intra-op threads (-1: ORT default);
    ``line_width``: the recogniser's input width in pixels (at height 48).
    Construction loads the model (about 10 MB, well under a second).
    """

    def __init__(self, batch_size: int = 8, threads: int = -1, line_width: int = 320) -> None:
        root = _package_dir()  # a clear error when the optional extra is missing
        from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer

        model_path = root / "models" / "ch_PP-OCRv4_rec_infer.onnx"
        if not model_path.is_file():
            from restoreae.errors import RestoreAEError

            raise RestoreAEError(f"OCR model not found: {model_path}")
        config = {
            "model_path": str(model_path),
            "rec_img_shape": [3, LINE_HEIGHT, int(line_width)],
            "rec_batch_num": int(batch_size),
            "intra_op_num_threads": int(threads),
            "inter_op_num_threads": -1,
            "use_cuda": False,
            "use_dml": False,
        }
        self._recognizer = TextRecognizer(config)
        #: The recogniser's classes: index 0 is the CTC blank, the last is a space.
        self.alphabet: list[str] = list(self._recognizer.postprocess_op.character)
        self._index = {ch: i for i, ch in enumerate(self.alphabet) if i > 0}

    @staticmethod
    def prepare(image: np.ndarray) -> np.ndarray:
        """One glyph (uint8 ``(H, W)``, white on black) → uint8 ``(48, W', 3)`` black on white."""
        img = np.asarray(image)
        if img.ndim != 2:
            raise ValueError(f"expected a grey (H, W) glyph image, got shape {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"expected uint8 glyph image, got dtype {img.dtype}")
        h, w = img.shape
        pad = max(1, round(MARGIN * max(h, w)))
        inverted = 255 - img
        padded = cv2.copyMakeBorder(inverted, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
        ph, pw = padded.shape
        new_w = max(1, round(pw * LINE_HEIGHT / ph))
        interp = cv2.INTER_AREA if ph > LINE_HEIGHT else cv2.INTER_LINEAR
        line = cv2.resize(padded, (new_w, LINE_HEIGHT), interpolation=interp)
        return np.repeat(line[:, :, None], 3, axis=2)

    def read_with_scores(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Raw readings with the recogniser's confidence, one ``(text, score)`` per image."""
        if len(images) == 0:
            return []
        lines = [self.prepare(img) for img in images]
        results, _ = self._recognizer(lines)
        return [(str(text), float(score)) for text, score in results]

    def position_probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The recogniser's raw output for each glyph: float32 ``(T, C)`` class probabilities per
        position (``C = len(self.alphabet)``; ``T`` = input width / 8), as its own decoder sees it."""
        rec = self._recognizer
        lines = [self.prepare(img) for img in images]
        out: list[np.ndarray] = []
        _, height, width = rec.rec_image_shape
        for start in range(0, len(lines), rec.rec_batch_num):
            chunk = lines[start : start + rec.rec_batch_num]
            ratio = max([width / height] + [ln.shape[1] / ln.shape[0] for ln in chunk])
            batch = np.stack([rec.resize_norm_img(ln, ratio) for ln in chunk]).astype(np.float32)
            preds = rec.session(batch)[0]
            out.extend(np.asarray(preds[i], dtype=np.float32) for i in range(len(chunk)))
        return out

    def char_probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """float64 ``(N, C)``: for each glyph, the probability that it reads as exactly one
        character, for every character of :attr:`alphabet` (see :func:`single_char_ctc`)."""
        if len(images) == 0:
            return np.zeros((0, len(self.alphabet)))
        return np.stack([single_char_ctc(p) for p in self.position_probabilities(images)])

    def candidates(
        self, images: Sequence[np.ndarray], k: int = 5, accept=None
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable one-character readings of each glyph, ``(char, probability)``
        best first. ``accept``: optional predicate on a character (e.g. "is a CJK ideograph")."""
        probs = self.char_probabilities(images)
        out = []
        for row in probs:
            picked: list[tuple[str, float]] = []
            for idx in np.argsort(-row, kind="stable"):
                if len(picked) >= k or row[idx] <= 0.0:
                    break
                ch = self.alphabet[idx]
                if idx == 0 or idx == len(self.alphabet) - 1 or (accept and not accept(ch)):
                    continue
                picked.append((ch, float(row[idx])))
            out.append(picked)
        return out

    def confidence(
        self, images: Sequence[np.ndarray], chars: Sequence[Sequence[str]]
    ) -> np.ndarray:
        """float64 ``(N,)``: the probability that glyph ``i`` reads as exactly one of the characters
        in ``chars[i]`` (a string or sequence of characters; ones outside the alphabet count 0)."""
        if len(images) != len(chars):
            raise ValueError(f"{len(images)} images but {len(chars)} character sets")
        probs = self.char_probabilities(images)
        out = np.zeros(len(images))
        for i, options in enumerate(chars):
            idx = sorted({self._index[c] for c in options if c in self._index})
            out[i] = float(probs[i, idx].sum()) if idx else 0.0
        return out

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        """Recognised text for each glyph (uint8 ``(H, W)`` white on black), unnormalised."""
        return [text for text, _ in self.read_with_scores(images)]

    def correct(self, images: Sequence[np.ndarray], chars: Sequence[str]) -> np.ndarray:
        """Boolean ``(N,)``: whether each glyph is read as exactly its expected character."""
        if len(images) != len(chars):
            raise ValueError(f"{len(images)} images but {len(chars)} expected characters")
        readings = self.read(images)
        return np.array(
            [normalize_reading(r) == c for r, c in zip(readings, chars, strict=True)], dtype=bool
        )

    def accuracy(self, images: Sequence[np.ndarray], chars: Sequence[str]) -> float:
        """Share (0–1) of glyphs read as exactly their expected character."""
        if len(images) == 0:
            raise ValueError("empty image set: accuracy is undefined")
        return float(self.correct(images, chars).mean())
