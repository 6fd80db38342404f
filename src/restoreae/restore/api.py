"""The Python API: restore real images of single characters.

>>> from restoreae import Restorer
>>> r = Restorer.from_pretrained()                  # the shipped model, the fast CPU backend
>>> out = r.restore("rubbing.jpg", char="永")       # uint8 (H, W), the input's size and polarity
>>> res = r.restore("rubbing.jpg", char="auto")     # AutoRestoration: .image, .char, .confidence

Any character a font draws can be given (simplified, traditional, a variant, a rare one): the
reference is drawn in the model's font, else in the first font of the fallback chain that has it
(:mod:`restoreae.data.reference`); :meth:`Restorer.reference_glyph` says which font drew it. With
``char="auto"`` the recogniser (optional extra ``restoreae[ocr]``) proposes candidates and the one
whose restoration it reads back most confidently is kept (:mod:`restoreae.restore.auto`).

Inputs may be file paths, PIL images or numpy arrays (grey, RGB, RGBA; uint8, uint16 or float);
either polarity (black ink on paper, white strokes of a rubbing) is detected and kept. See
:mod:`restoreae.restore.preprocess` for the mapping to and from the model's S×S glyph.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import numpy as np
from PIL import Image

from restoreae.errors import RestoreAEError
from restoreae.models.weights import ModelSource, resolve_weights
from restoreae.restore.backends import BACKENDS, Backend, open_backend
from restoreae.restore.preprocess import Polarity, Prepared, finish, load_image, prepare

if TYPE_CHECKING:  # pragma: no cover
    from restoreae.data.reference import ReferenceGlyph, ReferenceRenderer
    from restoreae.restore.auto import AutoRestoration, CharPicker
ImageLike = np.ndarray | Image.Image | str | os.PathLike

# CJK ideograph blocks: unified (BMP + extensions A–H) and compatibility ideographs.
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
    (0x30000, 0x323AF),
)


#: The ``char`` value that asks the recogniser for the character.
AUTO = "auto"


class NoReferenceError(RestoreAEError):
    """No installed font draws ``char``, so it has no reference glyph. The message names the
    Python API's ``char=`` argument; the CLI and the web page word it for themselves."""

    def __init__(self, char: str, fonts: Sequence[str] = ()) -> None:
        self.char = char
        self.fonts = tuple(fonts)
        super().__init__(
            f"no installed font draws {char!r} (U+{ord(char):04X}), so it has no reference glyph; "
            'pass another form of the character as char=, char="auto" to let the recogniser '
            "choose, or char=None to restore without a reference"
        )


def validate_char(char: str, name: str = "char") -> str:
    """Return ``char`` stripped of whitespace if it is exactly one CJK ideograph, else raise a
    RestoreAEError naming ``name`` (the argument, flag or field it came from)."""
    c = char.strip() if isinstance(char, str) else char
    if not isinstance(c, str) or len(c) != 1:
        raise RestoreAEError(f"{name} must be a single Chinese character, got {char!r}")
    code = ord(c)
    if not any(a <= code <= b for a, b in _CJK_RANGES):
        raise RestoreAEError(f"{char!r} (U+{code:04X}) is not a CJK ideograph")
    return c


class Restorer:
    """Restore damaged images of single Chinese characters with a trained model.

    ``model``: any model spec (:func:`restoreae.models.weights.resolve_weights`: None or a shipped
    name, a run folder, a ``.safetensors`` or ``.onnx`` file, ``ARCH:FILE``).
    ``backend``: ``"auto"`` (ONNX Runtime on the CPU, from an export cached beside the weights;
    PyTorch on other devices), ``"onnx"``, ``"torch"``, or a ready backend object
    (:class:`~restoreae.restore.backends.Backend`; ``model`` is then ignored).
    ``device``: torch device (``cpu`` for the ONNX backend). ``threads``: CPU threads (None:
    library default). ``polarity``: ``"auto"`` (detect per image), ``"dark-on-light"`` or
    ``"light-on-dark"``.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        backend: str | Backend = "auto",
        device: str = "cpu",
        threads: int | None = None,
        polarity: Polarity = "auto",
    ) -> None:
        if not isinstance(backend, str):  # a ready backend object (see backends.Backend)
            missing = [a for a in ("metadata", "img_size", "in_chans") if not hasattr(backend, a)]
            if missing or not callable(backend):
                raise RestoreAEError(
                    f"backend object {type(backend).__name__} must be callable and have "
                    f"metadata, img_size, in_chans (missing: {', '.join(missing) or 'none'})"
                )
        elif backend not in BACKENDS:
            raise RestoreAEError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if polarity not in ("auto", "dark-on-light", "light-on-dark"):
            raise RestoreAEError(
                f"polarity must be auto, dark-on-light or light-on-dark: {polarity!r}"
            )
        self.polarity: Polarity = polarity
        self._backend: Backend
        #: The resolved model spec (None for a ready backend object).
        self.source: ModelSource | None = None
        if isinstance(backend, str):
            self.source = resolve_weights(model)
            self._backend = open_backend(self.source, backend, device=device, threads=threads)
        else:
            self._backend = backend
        #: ``"onnx"``, ``"torch"`` or the backend object's class name: what runs the model.
        self.backend_name = {"OnnxBackend": "onnx", "TorchBackend": "torch"}.get(
            type(self._backend).__name__, type(self._backend).__name__
        )
        self.model_path: Path | None = self.source.path if self.source else None
        self.metadata: dict = dict(self._backend.metadata)
        self._renderer: ReferenceRenderer | None = None
        self._picker: CharPicker | None = None
        self._warned_no_char = False
        self._warned_ignored_char = False

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike | None = None,
        backend: str = "auto",
        device: str = "cpu",
        **kwargs,
    ) -> Restorer:
        """A restorer for the shipped default model (``model=None``) or any model spec."""
        return cls(model, backend=backend, device=device, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def img_size(self) -> int:
        """The model's square input size S in pixels."""
        return int(self.metadata["img_size"])

    @property
    def in_chans(self) -> int:
        """1 (damaged glyph only) or 2 (damaged glyph + standard-font reference)."""
        return int(self.metadata["in_chans"])

    @property
    def uses_reference(self) -> bool:
        """Whether the model takes a reference channel (then ``char`` helps)."""
        return self.in_chans == 2

    # ------------------------------------------------------------------ steps
    def reference(self, char: str) -> np.ndarray:
        """The standard-font reference of ``char``: uint8 (S, S), white ink on black."""
        return self.reference_glyph(char).glyph

    def reference_glyph(self, char: str) -> ReferenceGlyph:
        """The reference of ``char`` and the font that drew it (the model's reference font, else
        the first font of the fallback chain that has it). Raises :class:`NoReferenceError` when
        no installed font draws it."""
        from restoreae.data.reference import NoReferenceFontError

        char = validate_char(char)
        try:
            return self.reference_renderer.draw(char)
        except NoReferenceFontError as exc:
            raise NoReferenceError(char, exc.fonts) from exc

    @property
    def reference_renderer(self) -> ReferenceRenderer:
        """The :class:`~restoreae.data.reference.ReferenceRenderer` for this model (settable)."""
        if self._renderer is None:
            from restoreae.data.reference import renderer_for_model

            self._renderer = renderer_for_model(self.metadata, self.img_size)
        return self._renderer

    @reference_renderer.setter
    def reference_renderer(self, renderer: ReferenceRenderer) -> None:
        self._renderer = renderer

    def prepare(self, image: ImageLike, polarity: Polarity | None = None) -> Prepared:
        """Load ``image`` and map it to the model's input glyph (see :func:`prepare`); an opaque
        colour picture keeps its RGB pixels in ``Prepared.colour``."""
        grey, info = load_image(image)
        return prepare(grey, self.img_size, polarity or self.polarity, colour=info.get("rgb"))

    def finish(self, prep: Prepared, output: np.ndarray) -> np.ndarray:
        """One image's model output ``(K, S, S)`` (see :meth:`run`) → the restored image, uint8
        (H, W) or (H, W, 3) for colour input, at the input's size and polarity
        (see :func:`~restoreae.restore.preprocess.finish`)."""
        output = np.asarray(output)
        mask = output[1] if output.ndim == 3 and output.shape[0] == 2 else None
        return finish(prep, output[0] if output.ndim == 3 else output, mask, prep.colour)

    def model_input(
        self, prep: Prepared, char: str | None = None, use_reference: bool = True
    ) -> np.ndarray:
        """float32 (C, S, S) in [0, 1] for one prepared image.

        Channel 1 (2-channel models) is the reference glyph of ``char`` (fitted to the glyph's ink
        box when the model was trained so: metadata ``reference_fit``); it is left empty (zeros,
        as in training's reference dropout) when ``char`` is None (with a one-time warning) or
        ``use_reference`` is False (silently).
        """
        x = np.zeros((self.in_chans, self.img_size, self.img_size), np.float32)
        x[0] = prep.glyph.astype(np.float32) / 255.0
        if not use_reference:
            return x
        if char is not None and not self.uses_reference:
            validate_char(char)
            if not self._warned_ignored_char:
                self._warned_ignored_char = True
                warnings.warn(
                    "this model takes no reference channel: the given character is ignored",
                    stacklevel=3,
                )
        elif self.uses_reference:
            if char is None:
                if not self._warned_no_char:
                    self._warned_no_char = True
                    warnings.warn(
                        "no character given: the model's reference channel is left empty "
                        "(it still restores, usually less faithfully; pass char= / --char)",
                        stacklevel=3,
                    )
            else:
                x[1] = self.reference(char).astype(np.float32) / 255.0
                if self.metadata.get("reference_fit") == "box":
                    from restoreae.data.reference_fit import fit_reference_np

                    x[1] = fit_reference_np(x[1], x[0])
        return x

    def model_reference(self, prep: Prepared, char: str) -> np.ndarray:
        """The reference of ``char`` as the model is given it for ``prep``: uint8 (S, S), white
        on black — :meth:`reference`, fitted to the glyph when the model was trained so."""
        return np.rint(self.model_input(prep, char)[1] * 255.0).astype(np.uint8)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The bare model: float32 (B, C, S, S) in [0, 1] → float32 (B, K, S, S) in [0, 1]
        (K = 1 restored glyph; K = 2 for composite models: content and restoration mask)."""
        return self._backend(batch)

    # ------------------------------------------------------------------ public
    @overload
    def restore(
        self, image: ImageLike, char: Literal["auto"], polarity: Polarity | None = None
    ) -> AutoRestoration: ...

    @overload
    def restore(
        self, image: ImageLike, char: str | None = None, polarity: Polarity | None = None
    ) -> np.ndarray: ...

    def restore(
        self, image: ImageLike, char: str | None = None, polarity: Polarity | None = None
    ) -> np.ndarray | AutoRestoration:
        """Restore one image: path / PIL image / array → uint8 (H, W) — (H, W, 3) for a colour
        picture — at the input's size and polarity.

        With ``char="auto"`` the answer is an :class:`~restoreae.restore.auto.AutoRestoration`
        (``.image``, ``.char``, ``.confidence``, ``.candidates``, ``.font``) instead.
        """
        if char == AUTO:
            return self.restore_auto([image], polarity=polarity)[0]
        return self.restore_many([image], [char], batch_size=1, polarity=polarity)[0]

    def picker(
        self,
        k: int | None = None,
        min_confidence: float | None = None,
        proposal_weight: float | None = None,
    ) -> CharPicker:
        """The :class:`~restoreae.restore.auto.CharPicker` used by ``char="auto"`` (created once;
        ``k`` / ``min_confidence`` / ``proposal_weight`` replace its settings)."""
        from restoreae.restore.auto import CharPicker

        if self._picker is None:
            self._picker = CharPicker(self)
        if k is not None or min_confidence is not None or proposal_weight is not None:
            old = self._picker
            self._picker = CharPicker(
                self,
                k=old.k if k is None else k,
                min_confidence=old.min_confidence if min_confidence is None else min_confidence,
                judge=old.judge,
                proposal_weight=old.proposal_weight if proposal_weight is None else proposal_weight,
            )
        return self._picker

    def restore_auto(
        self,
        images: Sequence[ImageLike],
        batch_size: int = 16,
        polarity: Polarity | None = None,
    ) -> list[AutoRestoration]:
        """Restore images whose character is unknown (see :mod:`restoreae.restore.auto`)."""
        from restoreae.restore.auto import AutoRestoration

        if batch_size < 1:
            raise RestoreAEError(f"batch_size must be ≥ 1, got {batch_size}")
        picker = self.picker()
        images = list(images)
        out: list[AutoRestoration] = []
        for start in range(0, len(images), batch_size):
            preps = [self.prepare(im, polarity) for im in images[start : start + batch_size]]
            for prep, (choice, y) in zip(preps, picker.pick(preps), strict=True):
                out.append(AutoRestoration(self.finish(prep, y), choice))
        return out

    def restore_many(
        self,
        images: Sequence[ImageLike],
        chars: Sequence[str | None] | None = None,
        batch_size: int = 16,
        polarity: Polarity | None = None,
    ) -> list[np.ndarray]:
        """Restore several images in batches; returns uint8 (H, W) (or (H, W, 3) for colour
        input) arrays in input order.

        ``chars``: one character (or None, or ``"auto"``) per image. Raises on the first bad image.
        """
        images = list(images)
        if chars is None:
            chars = [None] * len(images)
        chars = list(chars)
        if len(chars) != len(images):
            raise RestoreAEError(f"{len(images)} images but {len(chars)} characters")
        if batch_size < 1:
            raise RestoreAEError(f"batch_size must be ≥ 1, got {batch_size}")
        out: list[np.ndarray | None] = [None] * len(images)
        auto = [i for i, c in enumerate(chars) if c == AUTO]
        if auto:
            found = self.restore_auto([images[i] for i in auto], batch_size, polarity)
            for i, res in zip(auto, found, strict=True):
                out[i] = res.image
        rest = [i for i, c in enumerate(chars) if c != AUTO]
        for start in range(0, len(rest), batch_size):
            idx = rest[start : start + batch_size]
            preps = [self.prepare(images[i], polarity) for i in idx]
            batch = np.stack(
                [self.model_input(p, chars[i]) for p, i in zip(preps, idx, strict=True)]
            )
            restored = self.run(batch)
            for k, (p, i) in enumerate(zip(preps, idx, strict=True)):
                out[i] = self.finish(p, restored[k])
        return [o for o in out if o is not None]

    def restore_page(
        self, image: ImageLike, text: str | None = None, layout: str = "columns", **kwargs
    ):
        """Restore every character of a page (a rubbing, an inscription, a manuscript sheet).

        ``image``: path / PIL image / array, grey or RGB, either polarity. ``text``: the
        transcription in reading order (else each character is recognised by OCR). ``layout``:
        ``"columns"`` (vertical, right to left) or ``"rows"``. Returns a
        :class:`~restoreae.restore.page_restore.PageResult` (``.restored``: uint8, the page's
        shape; ``.characters``: boxes and characters in reading order). Other keyword arguments
        go to :func:`restoreae.restore.page_restore.restore_page`.
        """
        from restoreae.restore.page_restore import restore_page

        return restore_page(self, image, text=text, layout=layout, **kwargs)
