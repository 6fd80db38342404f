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
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["OcrJudge", "normalize_reading", "LINE_HEIGHT", "MARGIN"]

LINE_HEIGHT = 48
MARGIN = 0.15


def normalize_reading(text: str) -> str:
    """Drop punctuation (P*), symbols (S*), separators/whitespace (Z*) and control characters (C*)
    from an OCR reading."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


def _package_dir() -> Path:
    try:
        import rapidocr_onnxruntime
    except ImportError as exc:  # pragma: no cover - dependency is pinned in pyproject
        from restoreae.errors import RestoreAEError

        raise RestoreAEError(
            "the OCR judge needs rapidocr_onnxruntime==1.4.4 (pip install 'rapidocr_onnxruntime==1.4.4')"
        ) from exc
    return Path(rapidocr_onnxruntime.__file__).resolve().parent


class OcrJudge:
    """Reads single glyph images with PP-OCRv4 recognition.

    ``batch_size``: images per ONNX Runtime call; ``threads``: intra-op threads (-1: ORT default);
    ``line_width``: the recogniser's input width in pixels (at height 48).
    Construction loads the model (about 10 MB, well under a second).
    """

    def __init__(self, batch_size: int = 8, threads: int = -1, line_width: int = 320) -> None:
        from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer

        root = _package_dir()
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
