"""`restoreae serve`: a small local FastAPI app with one HTML page for restoring characters.

Endpoints:

- ``GET /``: the page (``static/index.html``; its CSS and JS are under ``/static/``).
- ``GET /api/models``: the models the page can pick from and the upload limits.
- ``POST /api/restore``: multipart form with one or more ``files``, an optional ``char`` (one
  character for every file, or one per file in order) and an optional ``model`` name. Answers
  ``202`` with a job (see below) at once; with the form field ``wait=1`` it answers ``200`` with
  the finished job instead.
- ``GET /api/jobs/{id}``: the job: ``status`` (``queued`` | ``running`` | ``done``), ``done`` of
  ``total`` files, a ``stage`` line, and ``results`` (one per file in upload order, ``null`` while
  pending). A result has ``name``, ``ok``, ``error`` (a message naming the file) or ``images``
  (``input``, ``reference`` or ``null``, ``restored``: PNG data URLs) and ``download`` (a URL).
- ``GET /download/{id}/{index}``: the restored image of one file as a PNG attachment.
- Page mode (whole pages: find the characters, correct them, restore again): see
  :mod:`restoreae.web.pages`.

Uploads are checked by decoding (never by file name): PNG, JPEG, TIFF, BMP, WebP or GIF, at most
``max_upload_bytes`` per file, ``max_files`` per request and ``MAX_IMAGE_SIDE`` pixels per side.
Inference runs in a thread pool, so the server keeps answering while it works. The server binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import ipaddress
import logging
import threading
import time
import uuid
import warnings
from collections import OrderedDict
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
from restoreae.restore.api import Restorer, validate_char
from restoreae.restore.preprocess import load_image, to_input_polarity

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "pretrained" / "default.safetensors"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 16
MAX_IMAGE_SIDE = 4096
MAX_KEPT_JOBS = 32
#: Pillow decoders the page accepts; others (EPS, PDF, ...) are never tried.
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")


# --------------------------------------------------------------------------- images
def decode_image(data: bytes, name: str, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """Decode uploaded bytes into a grey image: ``uint8 (H, W)``, 0–255, polarity as given.

    Only :data:`IMAGE_FORMATS` decoders are tried (the content decides, not the file name); the
    pixels are converted as the CLI does (``restoreae.restore.preprocess.load_image``: alpha
    flattened onto a contrasting background, 16-bit scaled, EXIF orientation applied). Raises
    :class:`DataError` naming ``name`` when the bytes are empty, not an image of an accepted
    format, damaged, or larger than ``max_side`` pixels on a side.
    """
    if not data:
        raise DataError(f"{name}: the file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            w, h = im.size
            if max(w, h) > max_side:
                raise DataError(
                    f"{name}: the image is {w}×{h} pixels; the limit is {max_side} per side"
                )
            im.load()
            grey, _info = load_image(im)
            return grey
    except UnidentifiedImageError:
        raise DataError(
            f"{name}: not an image (accepted: {', '.join(IMAGE_FORMATS)}); "
            "the content was checked, not the file name"
        ) from None
    except RestoreAEError as exc:
        msg = str(exc)
        raise DataError(msg if name in msg else f"{name}: {msg}") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: the image is damaged and cannot be decoded ({exc})") from None


def png_bytes(grey: np.ndarray) -> bytes:
    """Encode ``uint8 (H, W)`` grey as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(png: bytes) -> str:
    """PNG bytes → ``data:image/png;base64,...``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def parse_chars(text: str | None, n_files: int) -> list[str | None]:
    """The ``char`` form field → one character (or None) per file.

    Whitespace is ignored. Empty → no character; one character → the same for every file;
    ``n_files`` characters → one per file in upload order. Anything else, or a character that is
    not a CJK ideograph, raises DataError.
    """
    chars = [c for c in (text or "") if not c.isspace()]
    for c in chars:
        try:
            validate_char(c)
        except RestoreAEError as exc:
            raise DataError(f"char: {exc}") from None
    if not chars:
        return [None] * n_files
    if len(chars) == 1:
        return [chars[0]] * n_files
    if len(chars) == n_files:
        return list(chars)
    raise DataError(
        f"char: give one character for all files or one per file "
        f"({n_files} file(s), {len(chars)} characters given)"
    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


# --------------------------------------------------------------------------- jobs
@dataclass
class FileResult:
    """The outcome for one uploaded file: PNG bytes of the images, or an error message."""

    name: str
    char: str | None = None
    error: str | None = None
    input_png: bytes | None = None
    reference_png: bytes | None = None
    restored_png: bytes | None = None
    size: tuple[int, int] | None = None  # (width, height)
    seconds: float = 0.0
    note: str | None = None

    def to_json(self, job_id: str, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": index,
            "name": self.name,
            "char": self.char,
            "ok": self.error is None,
            "error": self.error,
        }
        if self.error is None:
            out["width"], out["height"] = self.size or (0, 0)
            out["seconds"] = round(self.seconds, 4)
            out["note"] = self.note
            out["images"] = {
                "input": png_data_url(self.input_png or b""),
                "reference": png_data_url(self.reference_png) if self.reference_png else None,
                "restored": png_data_url(self.restored_png or b""),
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

    def to_json(self, skip: int = 0) -> dict[str, Any]:
        """The job as JSON; the first ``skip`` results (which a poller already has) are sent as
        ``{"index": i, "omitted": true}`` to keep each poll small."""
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
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


class RestoreService:
    """Holds the models (loaded lazily, cached), the worker pool and the recent jobs.

    ``model_paths`` maps the names shown in the page to what
    ``Restorer.from_pretrained(model=...)`` accepts (a checkpoint path or a model name).
    """

    def __init__(
        self,
        model_paths: dict[str, str | Path],
        *,
        device: str = "cpu",
        backend: str = "torch",
        workers: int = 1,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_image_side: int = MAX_IMAGE_SIDE,
    ) -> None:
        self.model_paths = {str(k): v for k, v in model_paths.items()}
        self.device = device
        self.backend = backend
        self.max_upload_bytes = max_upload_bytes
        self.max_image_side = max_image_side
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="restore"
        )
        self._restorers: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._infer_locks: dict[str, threading.Lock] = {}
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._jobs_lock = threading.Lock()

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
    def submit(self, uploads: list[_Upload], chars: list[str | None], model: str) -> Job:
        """Queue a job restoring ``uploads`` with ``model``; returns at once."""
        job = Job(id=uuid.uuid4().hex, model=model, total=len(uploads))
        job.results = [None] * len(uploads)
        with self._jobs_lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_KEPT_JOBS:
                oldest = next(iter(self._jobs.values()))
                if oldest.status != "done":
                    break
                self._jobs.popitem(last=False)
        job.future = self._executor.submit(self._run, job, uploads, chars)
        return job

    def job(self, job_id: str) -> Job | None:
        with self._jobs_lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job, uploads: list[_Upload], chars: list[str | None]) -> None:
        job.status = "running"
        restorer = None
        try:
            job.stage = f"loading model {job.model}"
            restorer = self.restorer(job.model)
        except Exception as exc:  # the model itself is broken: every file fails with its reason
            log.exception("cannot load model %s", job.model)
            reason = str(exc) if isinstance(exc, RestoreAEError) else repr(exc)
            for i, up in enumerate(uploads):
                job.results[i] = FileResult(
                    up.name,
                    chars[i],
                    error=f"{up.name}: model {job.model!r} failed to load: {reason}",
                )
            job.done = job.total
        if restorer is not None:
            for i, (up, char) in enumerate(zip(uploads, chars, strict=True)):
                job.stage = f"restoring {up.name} ({i + 1}/{job.total})"
                with self._infer_locks[job.model]:  # a Restorer is not shared between threads
                    job.results[i] = self._restore_one(restorer, up, char)
                job.done = i + 1
        job.stage = "done"
        job.status = "done"

    def _restore_one(self, restorer: Restorer, up: _Upload, char: str | None) -> FileResult:
        t0 = time.perf_counter()
        res = FileResult(up.name, char)
        try:
            if up.too_large is not None:
                raise DataError(
                    f"{up.name}: the file is {_mb(up.too_large)}; "
                    f"the limit is {_mb(self.max_upload_bytes)} per file"
                )
            grey = decode_image(up.data, up.name, self.max_image_side)
            with warnings.catch_warnings():  # the page says it itself, see ``note``
                warnings.simplefilter("ignore", UserWarning)
                restored = np.asarray(restorer.restore(grey, char=char))
            if restored.shape != grey.shape or restored.dtype != np.uint8:
                raise RuntimeError(
                    f"restorer returned {restored.dtype} {restored.shape} for {grey.shape} input"
                )
            h, w = grey.shape
            res.size = (w, h)
            res.input_png = png_bytes(grey)
            res.restored_png = png_bytes(restored)
            if char is not None:
                # Shown in the input's polarity and ink / paper grey levels, like the restored one.
                ref = to_input_polarity(restorer.reference(char), restorer.prepare(grey))
                res.reference_png = png_bytes(ref)
                if not restorer.uses_reference:
                    res.note = "this model takes no reference: the character is shown, not used"
            elif restorer.uses_reference:
                res.note = "this model uses a reference: typing the character usually helps"
        except RestoreAEError as exc:
            msg = str(exc)
            res.error = msg if up.name in msg else f"{up.name}: {msg}"
        except Exception as exc:
            log.exception("restoring %s failed", up.name)
            res.error = f"{up.name}: restoration failed ({type(exc).__name__}: {exc})"
        res.seconds = time.perf_counter() - t0
        return res

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


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
    return JSONResponse({"detail": _too_large_text(limit)}, status_code=413)


def shipped_models() -> dict[str, Path]:
    """``{"default": path}`` when the shipped model file is installed, else ``{}``."""
    return {"default": SHIPPED_MODEL} if SHIPPED_MODEL.is_file() else {}


def create_app(
    model_paths: dict[str, str | Path] | None = None,
    *,
    device: str = "cpu",
    backend: str = "torch",
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_image_side: int = MAX_IMAGE_SIDE,
    workers: int = 1,
) -> FastAPI:
    """Build the web app.

    ``model_paths``: page name → checkpoint path or model name for ``Restorer.from_pretrained``;
    None → the shipped default model when installed. Limits: ``max_upload_bytes`` per file,
    ``max_files`` per request, ``max_image_side`` pixels. ``workers`` inference threads.
    """
    if model_paths is None:
        model_paths = shipped_models()
    if max_upload_bytes < 1 or max_files < 1:
        raise RestoreAEError("max_upload_bytes and max_files must be at least 1")
    service = RestoreService(
        model_paths,
        device=device,
        backend=backend,
        workers=workers,
        max_upload_bytes=max_upload_bytes,
        max_image_side=max_image_side,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="restoreae", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.service = service
    # Room for max_files full-size files plus the multipart framing and the small fields.
    app.add_middleware(_BodyLimit, limit=max_files * (max_upload_bytes + 4096) + 65536)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/models")
    async def models() -> dict[str, Any]:
        return {
            "models": [
                {"name": n, "file": Path(str(p)).name, "default": n == service.default_model}
                for n, p in service.model_paths.items()
            ],
            "default": service.default_model,
            "max_upload_bytes": max_upload_bytes,
            "max_files": max_files,
            "max_image_side": max_image_side,
            "formats": list(IMAGE_FORMATS),
        }

    @app.post("/api/restore")
    async def restore(request: Request) -> JSONResponse:
        try:
            form = await request.form(max_files=max_files, max_fields=16)
        except StarletteHTTPException as exc:  # what Starlette's multipart parser raises
            if "Too many files" in str(exc.detail):
                raise HTTPException(
                    413, f"too many files: at most {max_files} per request"
                ) from None
            raise
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise HTTPException(400, "no file uploaded: choose one or more images (field 'files')")
        model = str(form.get("model") or "") or service.default_model
        if model is None:
            raise HTTPException(
                503, "no model available: install the shipped model or start with --model PATH"
            )
        if model not in service.model_paths:
            raise HTTPException(
                400, f"unknown model {model!r}; available: {', '.join(service.model_paths)}"
            )
        try:
            chars = parse_chars(str(form.get("char") or ""), len(files))
        except DataError as exc:
            raise HTTPException(400, str(exc)) from None
        uploads = []
        for i, f in enumerate(files):
            # The base name only, whatever the sender's path separator.
            name = PureWindowsPath(f.filename or "").name or f"file {i + 1}"
            data = await f.read(max_upload_bytes + 1)
            size = f.size if f.size is not None else len(data)
            over = len(data) > max_upload_bytes
            uploads.append(_Upload(name, b"" if over else data, size if over else None))
            await f.close()
        job = service.submit(uploads, chars, model)
        if str(form.get("wait") or "") in ("1", "true", "yes"):
            await asyncio.wrap_future(job.future)
            return JSONResponse(job.to_json(), status_code=200)
        return JSONResponse(job.to_json(), status_code=202)

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str, skip: int = 0) -> dict[str, Any]:
        """The job; ``skip``: leave out the first results' images (the page has them)."""
        job = service.job(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept for a while only)")
        return job.to_json(skip=skip)

    @app.get("/download/{job_id}/{index}")
    async def download(job_id: str, index: int) -> Response:
        job = service.job(job_id)
        if job is None or not 0 <= index < len(job.results):
            raise HTTPException(404, f"no result {index} in job {job_id!r}")
        res = job.results[index]
        if res is None or res.restored_png is None:
            raise HTTPException(404, f"result {index} of job {job_id!r} has no restored image")
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
    """``--model`` values → page names: ``NAME=PATH``, a checkpoint path (named by its stem) or a
    model name. The shipped default, when installed, comes first as ``default``."""
    models: dict[str, str] = {k: str(v) for k, v in shipped_models().items()}
    for value in values or []:
        name, sep, target = value.partition("=")
        if not sep:
            target, path = value, Path(value)
            name = path.stem if path.suffix else value
            if path.parent.name == "weights" and path.parent.parent.name:  # a run's weights
                name = f"{path.parent.parent.name}-{path.stem}"
        if not name or not target:
            raise RestoreAEError(f"--model {value!r}: expected PATH or NAME=PATH")
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
    for name, target in models.items():
        looks_like_path = any(c in target for c in "/\\") or target.endswith(".safetensors")
        if looks_like_path and not Path(target).is_file():
            raise RestoreAEError(f"--model {name}: checkpoint file not found: {target}")
    app = create_app(
        models,
        device=args.device,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_files=args.max_files,
    )
    # Load the first model now so a broken checkpoint fails here rather than in the page.
    app.state.service.restorer(app.state.service.default_model)
    if not _is_loopback(args.host):
        print(
            f"warning: serving on {args.host}: anyone who can reach this machine can use the page"
        )
    print(f"restoreae: open http://{args.host}:{args.port}/  (models: {', '.join(models)})")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
