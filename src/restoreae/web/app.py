"""`restoreae serve`: a small local FastAPI app with one HTML page for restoring characters.

Endpoints (also described by the OpenAPI page at ``/docs`` and ``/openapi.json``):

- ``GET /``: the page (``static/index.html``; its CSS and JS are under ``/static/``).
- ``GET /api/models``: the models the page can pick from and the limits (bytes per file, files
  per request, pixels per side, jobs waiting).
- ``GET /api/samples``: the bundled example pictures (``/samples/NAME``) and their characters.
- ``POST /api/restore``: multipart form with one or more ``files``, an optional ``char`` (one
  character for every file, one per file in order, or ``auto``: the recogniser chooses it) and an
  optional ``model`` name. Answers
  ``202`` with a job (see below) at once; with the form field ``wait=1`` it answers ``200`` with
  the finished job instead. ``429`` with ``Retry-After`` (seconds) when ``max_queued`` jobs are
  already waiting.
- ``GET /api/jobs/{id}``: the job: ``status`` (``queued`` | ``running`` | ``done``), ``done`` of
  ``total`` files, ``failed``, a ``stage`` line, and ``results`` (one per file in upload order,
  ``null`` while pending). A result has ``name``, ``ok``, ``error`` / ``error_zh`` (a message
  naming the file, in English and Chinese) or ``images`` (URLs of the ``input``, ``reference`` or
  ``null``, and ``restored`` PNGs), ``download`` (a URL), ``reference_form`` /
  ``reference_font`` (the form drawn and the font that drew it) and, for ``auto``, ``auto``
  (``char`` or null, ``confidence``, ``candidates``: ``[char, confidence]``).
- ``GET /api/jobs/{id}/files/{index}/{input|reference|restored}.png``: one image of a result.
- ``GET /api/jobs/{id}/zip``: every restored image of a job in one ZIP file.
- ``GET /download/{id}/{index}``: the restored image of one file as a PNG attachment.
- Page mode (whole pages: find the characters, correct them, restore again): see
  :mod:`restoreae.web.pages`.

Uploads are checked by decoding (never by file name): PNG, JPEG, TIFF, BMP, WebP or GIF, at most
``max_upload_bytes`` per file, ``max_files`` per request and ``MAX_IMAGE_SIDE`` pixels per side.
Inference runs in a thread pool, so the server keeps answering while it works. What the server
holds is bounded: ``max_queued`` jobs waiting, ``MAX_JOB_BYTES`` of result images per job,
``MAX_KEPT_JOBS`` finished jobs and ``MAX_STORED_BYTES`` of result images in all (the oldest
finished jobs are dropped first).

The server binds to 127.0.0.1 unless told otherwise and answers only requests whose ``Host`` is
one of ``allowed_hosts`` (its own names: DNS rebinding gets 403); a request that changes state
(POST) from another site's page (``Origin`` or ``Sec-Fetch-Site`` says so) gets 403 too. Every
response carries ``Content-Security-Policy``, ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import ipaddress
import logging
import math
import socket
import threading
import time
import uuid
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from restoreae.errors import DataError, RestoreAEError
from restoreae.evaluate.ocr import ocr_available
from restoreae.models.weights import SHIPPED_NAME, resolve_weights, shipped_path
from restoreae.restore.api import AUTO, NoReferenceError, Restorer, validate_char
from restoreae.restore.inkcheck import count_characters
from restoreae.restore.preprocess import load_image, to_input_polarity

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 16
MAX_IMAGE_SIDE = 4096
#: Finished jobs kept for polling and download (the oldest are dropped first).
MAX_KEPT_JOBS = 32
#: Jobs waiting for the worker (not counting the one it works on); more get 429.
DEFAULT_MAX_QUEUED = 2
#: Result images (PNG bytes) one job may hold; a file whose images would pass it fails.
MAX_JOB_BYTES = 96 * 1024 * 1024
#: Result images held by all kept jobs together (the oldest finished jobs are dropped first).
MAX_STORED_BYTES = 256 * 1024 * 1024
#: Host names a loopback server answers to (plus the address it is bound to).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
#: The page's own resources only; images may be data or blob URLs (drag-and-drop previews).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: FastAPI's /docs page loads Swagger UI from its CDN and starts it with an inline script.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: Pillow decoders the page accepts; others (EPS, PDF, ...) are never tried.
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")
#: How the page names the character field in messages (no CLI flags on the page).
CHAR_FIELD = "the Character field"


# --------------------------------------------------------------------------- images
class PageError(DataError):
    """A message in the page's own terms (no command-line flags, no server paths), in English
    (``str(exc)``) and Chinese (``exc.zh``)."""

    def __init__(self, message: str, zh: str) -> None:
        super().__init__(message)
        self.zh = zh


def decode_image(data: bytes, name: str, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """Decode uploaded bytes into a grey image: ``uint8 (H, W)``, 0–255, polarity as given
    (:func:`decode_picture` without its colour pixels)."""
    return decode_picture(data, name, max_side)[0]


def decode_picture(
    data: bytes, name: str, max_side: int = MAX_IMAGE_SIDE
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode uploaded bytes into ``(grey, rgb)``: ``uint8 (H, W)`` grey, 0–255, polarity as
    given, and the ``uint8 (H, W, 3)`` colour pixels of an opaque colour picture (else None).

    Only :data:`IMAGE_FORMATS` decoders are tried (the content decides, not the file name); the
    pixels are converted as the CLI does (``restoreae.restore.preprocess.load_image``: alpha
    flattened onto a contrasting background, 16-bit scaled, EXIF orientation applied). Raises
    :class:`PageError` naming ``name`` when the bytes are empty, not an image of an accepted
    format, damaged, or larger than ``max_side`` pixels on a side (a decompression bomb, whose
    header declares far more pixels than its bytes hold, is called too large, not damaged).
    """
    too_big = (
        f"{name}: the image is too large: at most {max_side}×{max_side} pixels",
        f"{name}：图像过大，每边最多 {max_side} 像素",
    )
    if not data:
        raise PageError(f"{name}: the file is empty", f"{name}：文件是空的")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                w, h = im.size
                if max(w, h) > max_side:
                    raise PageError(
                        f"{name}: the image is {w}×{h} pixels; the limit is {max_side} per side",
                        f"{name}：图像为 {w}×{h} 像素，每边最多 {max_side} 像素",
                    )
                im.load()
                grey, info = load_image(im)
                rgb = info.get("rgb")
                return grey, (rgb if rgb is not None and rgb.shape[:2] == grey.shape else None)
    except PageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PageError(*too_big) from None
    except UnidentifiedImageError:
        raise PageError(
            f"{name}: not an image (accepted: {', '.join(IMAGE_FORMATS)}); "
            "the content was checked, not the file name",
            f"{name}：不是图像文件（接受 {', '.join(IMAGE_FORMATS)}）",
        ) from None
    except RestoreAEError as exc:
        msg = str(exc)
        raise PageError(
            msg if name in msg else f"{name}: {msg}", f"{name}：无法读取此图像"
        ) from None
    except MemoryError:
        raise PageError(*too_big) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PageError(
            f"{name}: the image is damaged and cannot be decoded ({exc})",
            f"{name}：图像已损坏，无法解码",
        ) from None


def png_bytes(image: np.ndarray) -> bytes:
    """Encode ``uint8 (H, W)`` grey or ``(H, W, 3)`` RGB as PNG bytes."""
    arr = np.ascontiguousarray(image, dtype=np.uint8)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected (H, W) or (H, W, 3) pixels, got shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


def parse_chars(text: str | None, n_files: int) -> list[str | None]:
    """The ``char`` form field → one character (or None, or ``"auto"``) per file.

    Whitespace is ignored. Empty → no character; ``auto`` → the recogniser chooses for every file;
    one character → the same for every file; ``n_files`` characters → one per file in upload
    order. Anything else, or a character that is not a CJK ideograph, raises DataError naming the
    field.
    """
    if (text or "").strip().lower() == AUTO:
        return [AUTO] * n_files
    chars = [c for c in (text or "") if not c.isspace()]
    for c in chars:
        try:
            validate_char(c, CHAR_FIELD)
        except RestoreAEError:
            raise PageError(
                f"{CHAR_FIELD}: {c!r} is not a Chinese character (CJK ideograph)",
                f"字：{c!r} 不是汉字",
            ) from None
    if not chars:
        return [None] * n_files
    if len(chars) == 1:
        return [chars[0]] * n_files
    if len(chars) == n_files:
        return list(chars)
    raise PageError(
        f"{CHAR_FIELD}: give one character for all files, one per file, or auto "
        f"({n_files} file(s), {len(chars)} characters given)",
        f"字：请为全部图像填一个字，或按顺序每图一字，或填 auto（{n_files} 个文件，{len(chars)} 个字）",
    )


def web_reference_error(exc: NoReferenceError, name: str) -> tuple[str, str]:
    """A missing reference for file ``name`` in the page's words (its field, no CLI flags, no
    ``char=``): ``(English, Chinese)``."""
    return (
        f"{name}: no installed font draws {exc.char!r} (U+{ord(exc.char):04X}), so it has no "
        f"reference glyph: type another form of the character in {CHAR_FIELD}, type auto to let "
        "the recogniser choose, or leave it empty",
        f"{name}：已安装的字体都不能写出 {exc.char!r}（U+{ord(exc.char):04X}），无标准字可用："
        "请在「字」栏输入此字的其他写法，或输入 auto 由识别器选择，或留空",
    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


# --------------------------------------------------------------------------- jobs
IMAGE_KINDS = ("input", "reference", "restored")


@dataclass
class FileResult:
    """The outcome for one uploaded file: PNG bytes of the images, or an error message."""

    name: str
    char: str | None = None
    error: str | None = None
    error_zh: str | None = None
    input_png: bytes | None = None
    reference_png: bytes | None = None
    restored_png: bytes | None = None
    size: tuple[int, int] | None = None  # (width, height)
    seconds: float = 0.0
    note: str | None = None
    reference_form: str | None = None
    reference_font: str | None = None
    auto: dict[str, Any] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of image data held."""
        return sum(len(b or b"") for b in (self.input_png, self.reference_png, self.restored_png))

    def png(self, kind: str) -> bytes | None:
        """The PNG of ``kind`` (``input``, ``reference`` or ``restored``), or None."""
        return {
            "input": self.input_png,
            "reference": self.reference_png,
            "restored": self.restored_png,
        }.get(kind)

    def to_json(self, job_id: str, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": index,
            "name": self.name,
            "char": self.char,
            "ok": self.error is None,
            "error": self.error,
            "error_zh": self.error_zh,
        }
        if self.error is None:
            base = f"/api/jobs/{job_id}/files/{index}"
            out["width"], out["height"] = self.size or (0, 0)
            out["seconds"] = round(self.seconds, 4)
            out["note"] = self.note
            out["reference_form"] = self.reference_form
            out["reference_font"] = self.reference_font
            out["auto"] = self.auto
            out["images"] = {
                "input": f"{base}/input.png",
                "reference": f"{base}/reference.png" if self.reference_png else None,
                "restored": f"{base}/restored.png",
            }
            out["download"] = f"/download/{job_id}/{index}"
        return out


@dataclass
class Job:
    """One restore request: its files are restored one after another in a worker thread."""

    id: str
    model: str
    total: int
    status: str = "queued"
    stage: str = "queued"
    done: int = 0
    results: list[FileResult | None] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    future: Future | None = None

    @property
    def failed(self) -> int:
        """Files finished with an error."""
        return sum(1 for r in self.results if r is not None and r.error is not None)

    @property
    def nbytes(self) -> int:
        """Bytes of result images held."""
        return sum(r.nbytes for r in self.results if r is not None)

    def to_json(self, skip: int = 0) -> dict[str, Any]:
        """The job as JSON; the first ``skip`` results (which a poller already has) are sent as
        ``{"index": i, "omitted": true}`` to keep each poll small."""
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "stage": self.stage,
            "done": self.done,
            "failed": self.failed,
            "total": self.total,
            "zip": f"/api/jobs/{self.id}/zip",
            "results": [
                None
                if r is None
                else {"index": i, "omitted": True}
                if i < skip
                else r.to_json(self.id, i)
                for i, r in enumerate(self.results)
            ],
        }


@dataclass
class _Upload:
    name: str
    data: bytes
    too_large: int | None = None  # the size when over the limit


class QueueFull(RestoreAEError):
    """``max_queued`` jobs are already waiting; ``retry_after``: seconds worth waiting."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RestoreService:
    """Holds the models (loaded lazily, cached), the worker pool and the recent jobs.

    ``model_paths`` maps the names shown in the page to what
    ``Restorer.from_pretrained(model=...)`` accepts (a checkpoint path or a model name).
    Bounded: ``max_queued`` jobs waiting (:meth:`submit` raises :class:`QueueFull` beyond),
    ``max_job_bytes`` of result images per job, ``max_kept_jobs`` finished jobs and
    ``max_stored_bytes`` of result images in all (the oldest finished jobs are dropped first).
    """

    def __init__(
        self,
        model_paths: dict[str, str | Path],
        *,
        device: str = "cpu",
        backend: str = "auto",
        workers: int = 1,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_image_side: int = MAX_IMAGE_SIDE,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_kept_jobs: int = MAX_KEPT_JOBS,
        max_job_bytes: int = MAX_JOB_BYTES,
        max_stored_bytes: int = MAX_STORED_BYTES,
    ) -> None:
        self.model_paths = {str(k): v for k, v in model_paths.items()}
        self.device = device
        self.backend = backend
        self.max_upload_bytes = max_upload_bytes
        self.max_image_side = max_image_side
        self.workers = max(1, workers)
        self.max_queued = max_queued
        self.max_kept_jobs = max_kept_jobs
        self.max_job_bytes = max_job_bytes
        self.max_stored_bytes = max_stored_bytes
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="restore")
        self._restorers: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._infer_locks: dict[str, threading.Lock] = {}
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._jobs_lock = threading.Lock()
        self._seconds_per_file = 1.0  # running mean, for Retry-After

    @property
    def default_model(self) -> str | None:
        """``default`` when present, else the first model given; None when there are none."""
        if "default" in self.model_paths:
            return "default"
        return next(iter(self.model_paths), None)

    def restorer(self, name: str) -> Restorer:
        """The :class:`~restoreae.restore.api.Restorer` for model ``name`` (loaded once)."""
        with self._model_lock:
            if name not in self._restorers:
                self._restorers[name] = Restorer.from_pretrained(
                    model=str(self.model_paths[name]), backend=self.backend, device=self.device
                )
                self._infer_locks[name] = threading.Lock()
            return self._restorers[name]

    # -- jobs
    def _waiting(self) -> list[Job]:
        return [j for j in self._jobs.values() if j.status != "done"]

    def submit(self, uploads: list[_Upload], chars: list[str | None], model: str) -> Job:
        """Queue a job restoring ``uploads`` with ``model``; returns at once.

        Raises :class:`QueueFull` when ``max_queued`` jobs wait besides the running ones."""
        job = Job(id=uuid.uuid4().hex, model=model, total=len(uploads))
        job.results = [None] * len(uploads)
        with self._jobs_lock:
            waiting = self._waiting()
            if len(waiting) >= self.max_queued + self.workers:
                files = sum(j.total - j.done for j in waiting)
                retry = max(1, min(600, math.ceil(files * self._seconds_per_file / self.workers)))
                raise QueueFull(
                    f"the server is busy: {len(waiting)} requests are waiting; try again in "
                    f"about {retry} s",
                    retry,
                )
            self._jobs[job.id] = job
            self._evict()
        job.future = self._executor.submit(self._run, job, uploads, chars)
        return job

    def _evict(self) -> None:
        """Drop the oldest finished jobs beyond ``max_kept_jobs`` or ``max_stored_bytes``
        (caller holds the jobs lock)."""
        done = [j for j in self._jobs.values() if j.status == "done"]
        stored = sum(j.nbytes for j in self._jobs.values())
        while done and (len(done) > self.max_kept_jobs or stored > self.max_stored_bytes):
            oldest = done.pop(0)
            stored -= oldest.nbytes
            del self._jobs[oldest.id]

    def job(self, job_id: str) -> Job | None:
        with self._jobs_lock:
            return self._jobs.get(job_id)

    def stored_bytes(self) -> int:
        """Bytes of result images held by all kept jobs."""
        with self._jobs_lock:
            return sum(j.nbytes for j in self._jobs.values())

    def _run(self, job: Job, uploads: list[_Upload], chars: list[str | None]) -> None:
        job.status = "running"
        restorer = None
        try:
            job.stage = f"loading model {job.model}"
            restorer = self.restorer(job.model)
        except Exception as exc:  # the model itself is broken: every file fails with its reason
            log.exception("cannot load model %s", job.model)
            for i, up in enumerate(uploads):
                job.results[i] = FileResult(
                    up.name,
                    chars[i],
                    error=f"{up.name}: the model {job.model!r} cannot be used "
                    f"({type(exc).__name__}); the server's log says why",
                    error_zh=f"{up.name}：模型 {job.model!r} 无法使用，详见服务器日志",
                )
            job.done = job.total
        if restorer is not None:
            for i, (up, char) in enumerate(zip(uploads, chars, strict=True)):
                job.stage = f"restoring {up.name} ({i + 1}/{job.total})"
                with self._infer_locks[job.model]:  # a Restorer is not shared between threads
                    res = self._restore_one(restorer, up, char)
                uploads[i] = _Upload(up.name, b"")  # the upload's bytes are not needed any more
                if res.error is None and job.nbytes + res.nbytes > self.max_job_bytes:
                    res = FileResult(
                        up.name,
                        char,
                        error=f"{up.name}: the results of this request pass the server's memory "
                        f"limit ({_mb(self.max_job_bytes)}); send fewer or smaller images",
                        error_zh=f"{up.name}：本次结果超过服务器内存上限，请减少或缩小图像",
                    )
                job.results[i] = res
                job.done = i + 1
                self._seconds_per_file = 0.8 * self._seconds_per_file + 0.2 * res.seconds
        job.stage = "done"
        with self._jobs_lock:
            job.status = "done"
            self._evict()

    def _restore_one(self, restorer: Restorer, up: _Upload, char: str | None) -> FileResult:
        t0 = time.perf_counter()
        res = FileResult(up.name, char)
        try:
            if up.too_large is not None:
                raise PageError(
                    f"{up.name}: the file is {_mb(up.too_large)}; "
                    f"the limit is {_mb(self.max_upload_bytes)} per file",
                    f"{up.name}：文件大小 {_mb(up.too_large)}，每个文件最多 "
                    f"{_mb(self.max_upload_bytes)}",
                )
            grey, rgb = decode_picture(up.data, up.name, self.max_image_side)
            # A colour picture is restored in colour (RGB in → RGB out, as the CLI and the API).
            picture = rgb if rgb is not None else grey
            count = count_characters(grey)
            if count > 1:
                raise PageError(
                    f"{up.name}: this picture seems to show {count} characters; the page "
                    "restores one character per picture: crop each one and send them together",
                    f"{up.name}：图中似有 {count} 个字；本页每张图只修复一个字，请逐字裁剪后一起上传",
                )
            h, w = grey.shape
            res.size = (w, h)
            res.input_png = png_bytes(picture)
            if count == 0:
                res.restored_png = res.input_png
                res.note = "no ink found: the picture is returned unchanged · 未发现笔画，原样返回"
                return res
            with warnings.catch_warnings():  # the page says it itself, see ``note``
                warnings.simplefilter("ignore", UserWarning)
                if char == AUTO:
                    found = restorer.restore(picture, char=AUTO)
                    restored = np.asarray(found.image)
                    char = res.char = found.char
                    res.auto = {
                        "char": found.char,
                        "confidence": round(found.confidence, 4),
                        "candidates": [[c, round(p, 4)] for c, p in found.candidates],
                    }
                else:
                    restored = np.asarray(restorer.restore(picture, char=char))
            if restored.shape != picture.shape or restored.dtype != np.uint8:
                raise RuntimeError(
                    f"restorer returned {restored.dtype} {restored.shape} for {picture.shape} input"
                )
            res.restored_png = png_bytes(restored)
            if char is not None:
                # Shown in the input's polarity and ink / paper grey levels, like the restored one.
                drawn = restorer.reference_glyph(char)
                ref = to_input_polarity(drawn.glyph, restorer.prepare(grey))
                res.reference_png = png_bytes(ref)
                res.reference_form, res.reference_font = drawn.drawn, drawn.font
                if not restorer.uses_reference:
                    res.note = "this model takes no reference: the character is shown, not used"
            elif res.auto is not None:
                res.note = (
                    "the recogniser found no character it is confident of: restored without a "
                    "reference; type the character and restore again"
                )
            elif restorer.uses_reference:
                res.note = "this model uses a reference: typing the character usually helps"
        except NoReferenceError as exc:
            res.error, res.error_zh = web_reference_error(exc, up.name)
        except PageError as exc:
            res.error, res.error_zh = str(exc), exc.zh
        except RestoreAEError as exc:
            msg = str(exc)
            res.error = msg if up.name in msg else f"{up.name}: {msg}"
            res.error_zh = f"{up.name}：无法修复此图像"
        except MemoryError:
            res.error = f"{up.name}: not enough memory on the server to restore this picture"
            res.error_zh = f"{up.name}：服务器内存不足，无法修复此图像"
        except Exception as exc:
            log.exception("restoring %s failed", up.name)
            res.error = f"{up.name}: restoration failed ({type(exc).__name__})"
            res.error_zh = f"{up.name}：修复失败"
        finally:
            res.seconds = time.perf_counter() - t0
        if res.error is not None:
            res.input_png = res.restored_png = res.reference_png = None
            res.size = None
        return res

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def bundled_samples() -> list[dict[str, str]]:
    """The example pictures shipped in ``restoreae/assets``: ``{"name", "char", "url"}``."""
    table = ASSETS_DIR / "samples.csv"
    if not table.is_file():
        return []
    with open(table, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        {"name": r["path"], "char": r["char"], "url": f"/samples/{quote(r['path'])}"}
        for r in rows
        if r.get("path") and (ASSETS_DIR / Path(r["path"]).name).is_file()
    ]


# --------------------------------------------------------------------------- app
class _BodyLimit:
    """ASGI middleware: answers 413 to a request whose body is larger than ``limit`` bytes."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, _too_large_text(self.limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large_text(limit: int) -> str:
    return f"the upload is larger than {_mb(limit)} in all; send fewer or smaller files"


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {
            "detail": _too_large_text(limit),
            "detail_zh": f"上传总量超过 {_mb(limit)}，请减少或缩小文件",
        },
        status_code=413,
    )


def _host_name(value: str) -> str:
    """``host[:port]`` or ``[v6][:port]`` → the lower-case host name without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> set[str]:
    """The host names a server bound to ``host`` answers to: ``host`` itself, the loopback names
    for a loopback address, this machine's names for a wildcard address, and ``extra``."""
    names = {_host_name(host)} | {_host_name(e) for e in extra if e.strip()}
    if _is_loopback(host):
        names |= set(LOOPBACK_NAMES)
    elif host in ("0.0.0.0", "::", ""):
        names |= set(LOOPBACK_NAMES) | {socket.gethostname().lower(), socket.getfqdn().lower()}
    return {n for n in names if n}


class _Guard:
    """ASGI middleware: refuses requests for other host names (DNS rebinding) and state-changing
    requests from other sites' pages (403), and adds the security headers to every response."""

    UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: Any, allowed_hosts: set[str]) -> None:
        self.app = app
        self.allowed = allowed_hosts

    def _refusal(self, scope: dict) -> tuple[str, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _host_name(headers.get("host", ""))
        if host not in self.allowed:
            return (
                f"this server does not answer to the host name {host or '(none)'!r}; open it "
                "by one of its own names",
                "此服务器不接受该主机名的请求",
            )
        if scope.get("method", "GET").upper() in self.UNSAFE:
            origin = headers.get("origin")
            if origin is not None:
                origin_host = _host_name(origin.split("://", 1)[-1].split("/", 1)[0])
                if origin == "null" or origin_host not in self.allowed:
                    return (
                        "requests from other sites are refused; use this server's own page",
                        "不接受来自其他网站的请求，请使用本服务器的页面",
                    )
            elif headers.get("sec-fetch-site") == "cross-site":
                return (
                    "requests from other sites are refused; use this server's own page",
                    "不接受来自其他网站的请求，请使用本服务器的页面",
                )
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path in ("/docs", "/docs/oauth2-redirect") else PAGE_CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers") or []) + extra
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            response = JSONResponse(
                {"detail": refusal[0], "detail_zh": refusal[1]}, status_code=403
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def shipped_models() -> dict[str, Path]:
    """``{"default": path}`` when the shipped model file is installed, else ``{}`` (other shipped
    models are offered with ``serve --model NAME``, e.g. ``--model faithful``)."""
    path = shipped_path()
    return {SHIPPED_NAME: path} if path.is_file() else {}


def _error(status: int, en: str, zh: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error in the page's terms: ``{"detail": English, "detail_zh": Chinese}``."""
    return JSONResponse({"detail": en, "detail_zh": zh}, status_code=status, headers=headers)


def _zip_name(name: str, used: set[str]) -> str:
    stem = Path(PureWindowsPath(name).name).stem or "glyph"
    cand, n = f"{stem}-restored.png", 2
    while cand in used:
        cand, n = f"{stem}-restored-{n}.png", n + 1
    used.add(cand)
    return cand


def create_app(
    model_paths: dict[str, str | Path] | None = None,
    *,
    device: str = "cpu",
    backend: str = "auto",
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_image_side: int = MAX_IMAGE_SIDE,
    workers: int = 1,
    allowed_hosts: Iterable[str] | None = None,
    max_queued: int = DEFAULT_MAX_QUEUED,
    max_kept_jobs: int = MAX_KEPT_JOBS,
    max_job_bytes: int = MAX_JOB_BYTES,
    max_stored_bytes: int = MAX_STORED_BYTES,
) -> FastAPI:
    """Build the web app.

    ``model_paths``: page name → model spec for ``Restorer.from_pretrained`` (see
    :func:`restoreae.models.weights.resolve_weights`); None → the shipped default model when
    installed. ``backend``: ``auto`` | ``onnx`` | ``torch`` (see
    :func:`restoreae.restore.backends.open_backend`). Limits: ``max_upload_bytes`` per file,
    ``max_files`` per request, ``max_image_side`` pixels; ``max_queued`` jobs waiting,
    ``max_kept_jobs`` finished jobs, ``max_job_bytes`` / ``max_stored_bytes`` of result images
    per job / in all. ``workers`` inference threads. ``allowed_hosts``: the ``Host`` names
    answered (default: the loopback names, see :func:`allowed_host_names`).
    """
    if model_paths is None:
        model_paths = shipped_models()
    if max_upload_bytes < 1 or max_files < 1 or max_queued < 0:
        raise RestoreAEError("max_upload_bytes and max_files must be at least 1, max_queued ≥ 0")
    hosts = (
        allowed_host_names("127.0.0.1")
        if allowed_hosts is None
        else {_host_name(h) for h in allowed_hosts}
    )
    service = RestoreService(
        model_paths,
        device=device,
        backend=backend,
        workers=workers,
        max_upload_bytes=max_upload_bytes,
        max_image_side=max_image_side,
        max_queued=max_queued,
        max_kept_jobs=max_kept_jobs,
        max_job_bytes=max_job_bytes,
        max_stored_bytes=max_stored_bytes,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.close()

    app = FastAPI(
        title="restoreae",
        summary="Restore damaged images of single Chinese characters on this computer.",
        description="The HTTP API behind the page at `/`: post images to `/api/restore`, poll "
        "`/api/jobs/{id}`, fetch the result images by the URLs it gives. Requests must name "
        "this server's own host; state-changing requests from other sites are refused.",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.allowed_hosts = hosts
    # Room for max_files full-size files plus the multipart framing and the small fields.
    app.add_middleware(_BodyLimit, limit=max_files * (max_upload_bytes + 4096) + 65536)
    app.add_middleware(_Guard, allowed_hosts=hosts)  # outermost: runs first
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/models")
    async def models() -> dict[str, Any]:
        """The models offered, the default one, and the limits of a request."""
        return {
            "models": [
                {"name": n, "file": Path(str(p)).name, "default": n == service.default_model}
                for n, p in service.model_paths.items()
            ],
            "default": service.default_model,
            "max_upload_bytes": max_upload_bytes,
            "max_files": max_files,
            "max_image_side": max_image_side,
            "max_queued": max_queued,
            "formats": list(IMAGE_FORMATS),
        }

    @app.get("/api/samples")
    async def samples() -> dict[str, Any]:
        """The bundled example pictures: name, character and URL."""
        return {"samples": bundled_samples()}

    @app.get("/samples/{name}", include_in_schema=False)
    async def sample(name: str) -> Response:
        known = {s["name"] for s in bundled_samples()}
        if name not in known:
            return _error(404, f"no example {name!r}", "没有这个示例")
        path = ASSETS_DIR / Path(name).name
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/api/restore",
        responses={
            202: {"description": "the job, queued"},
            200: {"description": "the finished job (form field wait=1)"},
            400: {"description": "no file, an unknown model or a bad character"},
            413: {"description": "too many files, or the upload is too large"},
            429: {"description": "too many jobs waiting; see Retry-After"},
        },
    )
    async def restore(request: Request) -> JSONResponse:
        """Restore the uploaded images (multipart: ``files``, ``char``, ``model``, ``wait``)."""
        try:
            form = await request.form(max_files=max_files, max_fields=16)
        except StarletteHTTPException as exc:  # what Starlette's multipart parser raises
            if "Too many files" in str(exc.detail):
                return _error(
                    413,
                    f"too many files: at most {max_files} per request",
                    f"文件过多：每次最多 {max_files} 个",
                )
            raise
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            return _error(
                400,
                "no file uploaded: choose one or more images (field 'files')",
                "未上传文件：请选择一个或多个图像",
            )
        model = str(form.get("model") or "") or service.default_model
        if model is None:
            return _error(
                503,
                "no model is available on this server",
                "此服务器没有可用的模型",
            )
        if model not in service.model_paths:
            return _error(
                400,
                f"unknown model {model!r}; available: {', '.join(service.model_paths)}",
                f"未知模型 {model!r}",
            )
        try:
            chars = parse_chars(str(form.get("char") or ""), len(files))
        except PageError as exc:
            return _error(400, str(exc), exc.zh)
        if AUTO in chars and not ocr_available():
            return _error(
                400,
                f"{CHAR_FIELD}: auto is not available on this server (its character recogniser is "
                "not installed); type the character, or leave the field empty",
                "字：此服务器未安装识别器，不能使用 auto；请输入该字，或留空",
            )
        uploads = []
        for i, f in enumerate(files):
            # The base name only, whatever the sender's path separator.
            name = PureWindowsPath(f.filename or "").name or f"file {i + 1}"
            data = await f.read(max_upload_bytes + 1)
            size = f.size if f.size is not None else len(data)
            over = len(data) > max_upload_bytes
            uploads.append(_Upload(name, b"" if over else data, size if over else None))
            await f.close()
        try:
            job = service.submit(uploads, chars, model)
        except QueueFull as exc:
            return _error(
                429,
                str(exc),
                f"服务器正忙，请约 {exc.retry_after} 秒后再试",
                headers={"Retry-After": str(exc.retry_after)},
            )
        if str(form.get("wait") or "") in ("1", "true", "yes"):
            await asyncio.wrap_future(job.future)
            return JSONResponse(job.to_json(), status_code=200)
        return JSONResponse(job.to_json(), status_code=202)

    def _missing_job(job_id: str) -> JSONResponse:
        return _error(
            404,
            f"no job {job_id!r} (finished jobs are kept for a while only)",
            "找不到该任务（已完成的任务只保留一段时间）",
        )

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str, skip: int = 0) -> Any:
        """The job; ``skip``: leave out the first results (the page has them)."""
        job = service.job(job_id)
        if job is None:
            return _missing_job(job_id)
        return job.to_json(skip=skip)

    @app.get("/api/jobs/{job_id}/files/{index}/{kind}.png")
    async def job_image(job_id: str, index: int, kind: str) -> Response:
        """One image of a result: ``input``, ``reference`` or ``restored`` (PNG)."""
        job = service.job(job_id)
        if job is None:
            return _missing_job(job_id)
        res = job.results[index] if 0 <= index < len(job.results) else None
        png = res.png(kind) if res is not None and kind in IMAGE_KINDS else None
        if png is None:
            return _error(404, f"no {kind} image for result {index}", "没有这张图")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private"})

    @app.get("/api/jobs/{job_id}/zip")
    async def job_zip(job_id: str) -> Response:
        """Every restored image of the job, as ``NAME-restored.png`` files in one ZIP."""
        job = service.job(job_id)
        if job is None:
            return _missing_job(job_id)
        buf, used = io.BytesIO(), set()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for res in job.results:
                if res is not None and res.restored_png is not None:
                    zf.writestr(_zip_name(res.name, used), res.restored_png)
        if not used:
            return _error(404, "this job has no restored image yet", "该任务还没有修复结果")
        return Response(
            buf.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="restored.zip"'},
        )

    @app.get("/download/{job_id}/{index}")
    async def download(job_id: str, index: int) -> Response:
        """The restored image of one file as a PNG attachment."""
        job = service.job(job_id)
        if job is None or not 0 <= index < len(job.results):
            return _error(404, f"no result {index} in job {job_id!r}", "找不到该结果")
        res = job.results[index]
        if res is None or res.restored_png is None:
            return _error(404, f"result {index} has no restored image", "该结果没有修复图像")
        fname = f"{Path(res.name).stem or 'glyph'}-restored.png"
        ascii_name = fname.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(fname)}"
        return Response(
            res.restored_png, media_type="image/png", headers={"Content-Disposition": disposition}
        )

    from restoreae.web.pages import add_page_routes

    app.state.pages = add_page_routes(app, service, max_upload_bytes)
    return app


# --------------------------------------------------------------------------- command
def parse_model_args(values: list[str] | None) -> dict[str, str]:
    """``--model`` values → page name → model spec. A value is ``NAME=SPEC`` or a bare ``SPEC``
    (named after the model: a run folder's name, a file's stem); every spec is resolved now (see
    :func:`restoreae.models.weights.resolve_weights`), so a bad one fails before the server
    starts. The shipped default, when installed, comes first as ``default``."""
    models: dict[str, str] = {k: str(v) for k, v in shipped_models().items()}
    for value in values or []:
        name, sep, target = value.partition("=")
        if not sep:
            name, target = "", value
        elif not name or not target:
            raise RestoreAEError(f"--model {value!r}: expected MODEL or NAME=MODEL")
        try:
            source = resolve_weights(target)
        except RestoreAEError as exc:
            raise RestoreAEError(f"--model {value}: {exc}") from None
        name = name or source.name
        base, n = name, 2
        while name in models and models[name] != target:
            name, n = f"{base}-{n}", n + 1
        models[name] = target
    return models


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(args: argparse.Namespace) -> int:
    """Start the web app with uvicorn (blocks until interrupted)."""
    import uvicorn

    models = parse_model_args(args.model)
    if not models:
        raise RestoreAEError(
            "no model to serve: the shipped default model is not installed; "
            "pass --model PATH (a checkpoint written by `restoreae train`)"
        )
    from restoreae.devices import check_device

    if not args.max_upload_mb > 0:
        raise RestoreAEError(f"--max-upload-mb must be more than 0, got {args.max_upload_mb}")
    hosts = allowed_host_names(args.host, getattr(args, "allow_host", []) or [])
    app = create_app(
        models,
        device=check_device(args.device),
        backend=getattr(args, "backend", None) or "auto",
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_files=args.max_files,
        allowed_hosts=hosts,
        max_queued=getattr(args, "max_queued", DEFAULT_MAX_QUEUED),
    )
    # Load the first model now so a broken checkpoint fails here rather than in the page.
    app.state.service.restorer(app.state.service.default_model)
    if not _is_loopback(args.host):
        print(
            f"warning: serving on {args.host}: anyone who can reach this machine can use the page"
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"restoreae: open http://{shown}:{args.port}/  (models: {', '.join(models)})")
    print(f"  answers to the host names: {', '.join(sorted(hosts))} (more with --allow-host)")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
