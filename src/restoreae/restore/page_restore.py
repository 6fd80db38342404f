"""Restore a whole page: find its characters, identify them, restore each, paste them back.

Used by :meth:`restoreae.restore.api.Restorer.restore_page`, ``restoreae restore-page`` and the
web page's page mode. The steps:

1. **Layout** (:func:`restoreae.restore.page.find_characters`) — or boxes given by the caller.
2. **Crops**: each box widened by :data:`CROP_MARGIN` of its longer side, cut from the grey page;
   ink of neighbouring characters that reaches into the margin is painted over with the crop's
   paper level, so each crop shows one character.
3. **Identity**: each crop is read by the OCR judge (PP-OCRv4 recognition from
   ``rapidocr_onnxruntime``, the optional extra ``restoreae[ocr]``;
   :class:`restoreae.evaluate.ocr.OcrJudge`) to draw its reference: its most probable
   one-character reading that is a CJK ideograph and that probability
   (:meth:`~restoreae.evaluate.ocr.OcrJudge.candidates`, the top-k that ``char="auto"`` uses
   too). A transcription (``text``)
   overrides it: in order when it has as many characters as boxes were found, else aligned to the
   readings (:func:`align_text`).
4. **Restore** all crops in batches (each crop prepared once, for the reader and the model:
   :meth:`Restorer.prepare`, :meth:`~Restorer.model_input`, :meth:`~Restorer.run`,
   :meth:`~Restorer.finish`, as :meth:`Restorer.restore_many` does); a character read with a
   confidence under ``min_confidence`` is restored without a reference.
5. **Paste back** with a soft mask limited to the ink neighbourhood (the original ink and the
   restored ink, widened and feathered), so the page keeps its own paper or stone texture, colour
   and size everywhere else: no squares, no seams. An RGB page stays RGB: the change in grey is
   added to each channel.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.imageio import otsu_threshold
from restoreae.restore.page import LAYOUTS, find_characters

if TYPE_CHECKING:
    from restoreae.restore.api import Restorer

#: Crop margin around a character box (fraction of the box's longer side, each side).
CROP_MARGIN: float = 0.15
#: Readings below this confidence are not used as the reference (the character is still reported).
MIN_CONFIDENCE: float = 0.3
SOURCES = ("ocr", "text", "none")


@dataclass
class PageCharacter:
    """One character of a page: ``box`` (x0, y0, x1, y1) in page pixels (exclusive ends),
    ``column`` (its column or row in reading order), ``char`` (None when unknown),
    ``confidence`` (0–1: the recogniser's probability that the crop reads as exactly this one
    character; None when the character was given), ``source``
    (``"ocr"``, ``"text"`` or ``"none"``)."""

    index: int
    box: tuple[int, int, int, int]
    column: int
    char: str | None
    confidence: float | None
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "box": [int(v) for v in self.box],
            "column": int(self.column),
            "char": self.char,
            "confidence": None if self.confidence is None else round(float(self.confidence), 4),
            "source": self.source,
        }


@dataclass
class PageResult:
    """A restored page.

    ``image`` / ``restored``: uint8 (H, W) grey or (H, W, 3) RGB, the page as given and restored
    (same shape). ``characters``: in reading order. ``crops`` / ``restored_crops``: uint8 grey
    crops (page polarity) of each character before and after, cut at ``crop_boxes``.
    ``alignment``: how a transcription was matched to the boxes (None without one).
    """

    image: np.ndarray
    restored: np.ndarray
    characters: list[PageCharacter]
    layout: str
    dark_on_light: bool
    crops: list[np.ndarray] = field(default_factory=list, repr=False)
    restored_crops: list[np.ndarray] = field(default_factory=list, repr=False)
    crop_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    alignment: dict | None = None
    seconds: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def to_json(self, name: str) -> dict[str, Any]:
        """The page's JSON record (see ``restoreae restore-page``)."""
        out: dict[str, Any] = {
            "image": name,
            "width": self.width,
            "height": self.height,
            "layout": self.layout,
            "polarity": "dark-on-light" if self.dark_on_light else "light-on-dark",
            "characters": [c.to_json() for c in self.characters],
        }
        if self.alignment is not None:
            out["alignment"] = self.alignment
        return out


# --------------------------------------------------------------------------- text
def _is_cjk(c: str) -> bool:
    from restoreae.restore.api import validate_char

    try:
        validate_char(c)
    except RestoreAEError:
        return False
    return True


def clean_text(text: str) -> str:
    """The characters of a transcription: letters only (punctuation, spaces, line breaks and
    symbols dropped, as they are not carved or written as characters)."""
    return "".join(c for c in text if unicodedata.category(c).startswith("L"))


def align_text(text: str, readings: Sequence[str | None]) -> tuple[list[int | None], dict]:
    """Match the transcription's characters to the found boxes in reading order.

    ``readings``: the recognised character of each box (None when unread). Equal counts: one to
    one in order. Otherwise a global (Needleman–Wunsch) alignment: +2 for a box whose reading
    equals the text's character, −1 for a box paired with a different character, −1 for a box
    left without text or a text character left without a box. Returns ``(text index or None per
    box, report)``; the report says how many characters the text and the page have and which
    boxes and text positions stayed unmatched.
    """
    n, m = len(readings), len(text)
    report: dict[str, Any] = {"text_chars": m, "found": n, "matched_in_order": n == m}
    if n == m:
        report.update(unmatched_boxes=[], unmatched_text=[], agree=_agree(text, readings))
        return list(range(n)), report
    gap, mis, hit = -1.0, -1.0, 2.0
    score = np.zeros((n + 1, m + 1))
    score[:, 0] = gap * np.arange(n + 1)
    score[0, :] = gap * np.arange(m + 1)
    for i in range(1, n + 1):
        r = readings[i - 1]
        for j in range(1, m + 1):
            diag = score[i - 1, j - 1] + (hit if r is not None and r == text[j - 1] else mis)
            score[i, j] = max(diag, score[i - 1, j] + gap, score[i, j - 1] + gap)
    assign: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        r = readings[i - 1]
        diag = score[i - 1, j - 1] + (hit if r is not None and r == text[j - 1] else mis)
        if np.isclose(score[i, j], diag):
            assign[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif np.isclose(score[i, j], score[i - 1, j] + gap):
            i -= 1
        else:
            j -= 1
    used = {a for a in assign if a is not None}
    report.update(
        unmatched_boxes=[k for k, a in enumerate(assign) if a is None],
        unmatched_text=[k for k in range(m) if k not in used],
        agree=_agree(text, readings, assign),
    )
    return assign, report


def _agree(text: str, readings: Sequence[str | None], assign: Sequence[int | None] | None = None):
    """How many boxes' readings equal the text character given to them."""
    if assign is None:
        assign = list(range(len(readings)))
    return int(
        sum(1 for r, a in zip(readings, assign, strict=True) if a is not None and r == text[a])
    )


# --------------------------------------------------------------------------- crops and paste
def crop_box(box: Sequence[int], shape: tuple[int, int], margin: float = CROP_MARGIN):
    """The crop (x0, y0, x1, y1) around a character box, widened by ``margin`` × its longer side
    and clipped to the page of ``shape`` (H, W)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    m = max(2, int(round(margin * max(x1 - x0, y1 - y0))))
    H, W = shape
    return max(0, x0 - m), max(0, y0 - m), min(W, x1 + m), min(H, y1 + m)


def _isolate(crop: np.ndarray, inner: tuple[int, int, int, int], dark_on_light: bool) -> np.ndarray:
    """The crop with ink outside the character's box (``inner``, crop coordinates, widened by 2 px)
    painted over with the crop's paper level."""
    g = crop.astype(np.int16)
    ink_bright = (255 - g) if dark_on_light else g
    t = otsu_threshold(ink_bright.astype(np.uint8)) if np.ptp(ink_bright) >= 8 else 255
    ink = ink_bright > t
    paper = int(np.median(crop[~ink])) if (~ink).any() else int(np.median(crop))
    x0, y0, x1, y1 = inner
    outside = np.ones(crop.shape, bool)
    outside[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2] = False
    out = crop.copy()
    out[outside & ink] = paper
    return out


def paste_mask(original: np.ndarray, restored: np.ndarray, dark_on_light: bool) -> np.ndarray:
    """float32 (h, w) in [0, 1]: where the restored crop replaces the original — the ink of
    either (Otsu threshold of the original, in its polarity), widened by ~4% of the crop's side
    and feathered, so the paper or stone texture is kept away from the strokes."""
    o = original.astype(np.int16)
    r = restored.astype(np.int16)
    if dark_on_light:
        o, r = 255 - o, 255 - r
    t = otsu_threshold(o.astype(np.uint8)) if np.ptp(o) >= 8 else 128
    ink = ((o > t) | (r > t)).astype(np.uint8)
    side = max(original.shape)
    d = max(3, int(round(0.04 * side)) | 1)
    ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d)))
    sigma = max(0.8, 0.02 * side)
    return np.clip(cv2.GaussianBlur(ink.astype(np.float32), (0, 0), sigma), 0.0, 1.0)


# --------------------------------------------------------------------------- the page
class _Reader:
    """The OCR judge, loaded once per process (a 10 MB ONNX model)."""

    judge = None

    @classmethod
    def get(cls):
        if cls.judge is None:
            from restoreae.evaluate.ocr import OcrJudge

            cls.judge = OcrJudge(batch_size=16, line_width=48)
        return cls.judge


def restore_page(
    restorer: Restorer,
    image: Any,
    text: str | None = None,
    layout: str = "columns",
    *,
    boxes: Sequence[Sequence[int]] | None = None,
    chars: Sequence[str | None] | None = None,
    columns: Sequence[int] | None = None,
    recognise: bool = True,
    min_confidence: float = MIN_CONFIDENCE,
    batch_size: int = 32,
    progress: Any = None,
) -> PageResult:
    """Restore every character of a page (see the module docstring).

    ``image``: a path, PIL image or array — uint8 (H, W) grey or (H, W, 3) RGB (RGBA flattened),
    either polarity. ``text``: the transcription in reading order (overrides recognition).
    ``boxes`` (x0, y0, x1, y1 each, page pixels, in reading order) skip the layout finder; with
    them ``chars`` (one per box, None: recognise it) and ``columns`` may be given.
    ``progress``: an optional callable ``progress(stage: str)``.
    """
    import time

    from restoreae.restore.page_io import load_page

    if layout not in LAYOUTS:
        raise RestoreAEError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    note = progress or (lambda _stage: None)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    grey, rgb = load_page(image)
    H, W = grey.shape
    page_in = rgb if rgb is not None else grey
    note("finding characters")
    if boxes is None:
        found = find_characters(page_in, layout, restorer.polarity)
        box_list = [b.box for b in found.boxes]
        col_list = [b.line for b in found.boxes]
        dark_on_light = found.dark_on_light
    else:
        from restoreae.imageio import detect_polarity

        box_list = []
        for k, b in enumerate(boxes):
            if len(b) != 4:
                raise RestoreAEError(f"box {k}: expected [x0, y0, x1, y1], got {list(b)}")
            x0, y0, x1, y1 = (int(round(float(v))) for v in b)
            x0, x1 = sorted((max(0, min(W, x0)), max(0, min(W, x1))))
            y0, y1 = sorted((max(0, min(H, y0)), max(0, min(H, y1))))
            if x1 - x0 < 2 or y1 - y0 < 2:
                raise RestoreAEError(f"box {k}: {list(b)} is empty or outside the {W}×{H} page")
            box_list.append((x0, y0, x1, y1))
        col_list = [int(c) for c in columns] if columns is not None else [0] * len(box_list)
        if len(col_list) != len(box_list):
            raise RestoreAEError(f"{len(box_list)} boxes but {len(col_list)} columns")
        pol = restorer.polarity if restorer.polarity != "auto" else detect_polarity(grey)
        dark_on_light = pol == "dark-on-light"
    if chars is not None and len(chars) != len(box_list):
        raise RestoreAEError(f"{len(box_list)} boxes but {len(chars)} characters")
    seconds["layout"] = time.perf_counter() - t0
    polarity = "dark-on-light" if dark_on_light else "light-on-dark"

    # Crops, each showing one character.
    crop_boxes, crops, isolated = [], [], []
    for b in box_list:
        cb = crop_box(b, (H, W))
        x0, y0, x1, y1 = cb
        crop = grey[y0:y1, x0:x1]
        inner = (b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0)
        crop_boxes.append(cb)
        crops.append(crop.copy())
        isolated.append(_isolate(crop, inner, dark_on_light))

    # Each crop is prepared once: the reader and the model see the same glyph.
    t1 = time.perf_counter()
    preps = [restorer.prepare(iso, polarity) for iso in isolated]
    seconds["prepare"] = time.perf_counter() - t1

    # Identity.
    t1 = time.perf_counter()
    given = list(chars) if chars is not None else [None] * len(box_list)
    readings: list[str | None] = [None] * len(box_list)
    scores: list[float | None] = [None] * len(box_list)
    to_read = [k for k, c in enumerate(given) if not c]
    if recognise and to_read:
        note(f"reading {len(to_read)} characters")
        glyphs = [preps[k].glyph for k in to_read]
        found = _Reader.get().candidates(glyphs, k=1, accept=_is_cjk)
        for k, cands in zip(to_read, found, strict=True):
            if cands:
                readings[k], scores[k] = cands[0][0], float(cands[0][1])
    alignment = None
    final: list[tuple[str | None, float | None, str]] = []
    for k in range(len(box_list)):
        if given[k]:
            final.append((given[k], None, "text"))
        elif readings[k]:
            final.append((readings[k], scores[k], "ocr"))
        else:
            final.append((None, None, "none"))
    if text is not None:
        t = clean_text(text)
        if not t:
            raise RestoreAEError("--text holds no characters")
        assign, alignment = align_text(t, readings)
        for k, a in enumerate(assign):
            if a is not None and not given[k]:
                final[k] = (t[a], None, "text")
    seconds["identify"] = time.perf_counter() - t1

    # Restore in batches.
    t2 = time.perf_counter()
    refs: list[str | None] = []
    for c, conf, source in final:
        use = c is not None and (source == "text" or (conf or 0.0) >= min_confidence)
        if use and restorer.uses_reference:
            try:
                restorer.reference(c)
            except RestoreAEError:
                use = False
        refs.append(c if use and restorer.uses_reference else None)
    note(f"restoring {len(box_list)} characters")
    restored_crops: list[np.ndarray] = []
    with warnings.catch_warnings():  # per-character sources are reported in the JSON instead
        warnings.simplefilter("ignore", UserWarning)
        for s in range(0, len(preps), batch_size):
            part = list(zip(preps[s : s + batch_size], refs[s : s + batch_size], strict=True))
            batch = np.stack([restorer.model_input(p, c) for p, c in part])
            outputs = restorer.run(batch)
            restored_crops.extend(
                restorer.finish(p, y) for (p, _c), y in zip(part, outputs, strict=True)
            )
    seconds["restore"] = time.perf_counter() - t2

    # Paste back.
    t3 = time.perf_counter()
    out = page_in.astype(np.float32)
    for (x0, y0, x1, y1), iso, rest in zip(crop_boxes, isolated, restored_crops, strict=True):
        m = paste_mask(iso, rest, dark_on_light)
        delta = m * (rest.astype(np.float32) - _grey_of(out[y0:y1, x0:x1]))
        if out.ndim == 3:
            out[y0:y1, x0:x1] += delta[..., None]
        else:
            out[y0:y1, x0:x1] += delta
    restored = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    seconds["paste"] = time.perf_counter() - t3
    seconds["total"] = time.perf_counter() - t0

    characters = [
        PageCharacter(k, tuple(int(v) for v in b), col, c, conf, source)
        for k, (b, col, (c, conf, source)) in enumerate(zip(box_list, col_list, final, strict=True))
    ]
    grey_out = cv2.cvtColor(restored, cv2.COLOR_RGB2GRAY) if restored.ndim == 3 else restored
    restored_view = [grey_out[y0:y1, x0:x1].copy() for x0, y0, x1, y1 in crop_boxes]
    return PageResult(
        image=page_in,
        restored=restored,
        characters=characters,
        layout=layout,
        dark_on_light=dark_on_light,
        crops=crops,
        restored_crops=restored_view,
        crop_boxes=crop_boxes,
        alignment=alignment,
        seconds=seconds,
    )


def _grey_of(region: np.ndarray) -> np.ndarray:
    """float32 (h, w) grey of a float (h, w) or (h, w, 3) RGB region (ITU-R 601 weights, as
    OpenCV's grey conversion)."""
    if region.ndim == 2:
        return region
    return region[..., 0] * 0.299 + region[..., 1] * 0.587 + region[..., 2] * 0.114
