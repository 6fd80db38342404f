"""The web page's restoration jobs: per-file results, jobs, and :class:`RestoreService` (models
loaded lazily, a worker pool, a bounded queue and a bounded store of finished jobs)."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.restore.api import AUTO, NoReferenceError, Restorer
from restoreae.restore.inkcheck import count_characters
from restoreae.restore.preprocess import to_input_polarity
from restoreae.web.images import (
    MAX_IMAGE_SIDE,
    PageError,
    decode_picture,
    megabytes,
    png_bytes,
    web_reference_error,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Finished jobs kept for polling and download (the oldest are dropped first).
MAX_KEPT_JOBS = 32
#: Jobs waiting for the worker (not counting the one it works on); more get 429.
DEFAULT_MAX_QUEUED = 2
#: Result images (PNG bytes) one job may hold; a file whose images would pass it fails.
MAX_JOB_BYTES = 96 * 1024 * 1024
#: Result images held by all kept jobs together (the oldest finished jobs are dropped first).
MAX_STORED_BYTES = 256 * 1024 * 1024


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
class Upload:
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

    def submit(self, uploads: list[Upload], chars: list[str | None], model: str) -> Job:
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

    def _run(self, job: Job, uploads: list[Upload], chars: list[str | None]) -> None:
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
                uploads[i] = Upload(up.name, b"")  # the upload's bytes are not needed any more
                if res.error is None and job.nbytes + res.nbytes > self.max_job_bytes:
                    res = FileResult(
                        up.name,
                        char,
                        error=f"{up.name}: the results of this request pass the server's memory "
                        f"limit ({megabytes(self.max_job_bytes)}); send fewer or smaller images",
                        error_zh=f"{up.name}：本次结果超过服务器内存上限，请减少或缩小图像",
                    )
                job.results[i] = res
                job.done = i + 1
                self._seconds_per_file = 0.8 * self._seconds_per_file + 0.2 * res.seconds
        job.stage = "done"
        with self._jobs_lock:
            job.status = "done"
            self._evict()

    def _restore_one(self, restorer: Restorer, up: Upload, char: str | None) -> FileResult:
        t0 = time.perf_counter()
        res = FileResult(up.name, char)
        try:
            if up.too_large is not None:
                raise PageError(
                    f"{up.name}: the file is {megabytes(up.too_large)}; "
                    f"the limit is {megabytes(self.max_upload_bytes)} per file",
                    f"{up.name}：文件大小 {megabytes(up.too_large)}，每个文件最多 "
                    f"{megabytes(self.max_upload_bytes)}",
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
