"""Where model weights live: the shipped models, the run-folder layout, and one model spec.

Every stage that takes a model from the user (``restore --model``, ``eval``, ``export``,
``serve --model [NAME=]SPEC``, ``Restorer.from_pretrained``, ``train --eval-only``) passes the
user's text to :func:`resolve_weights`, which accepts:

- ``None`` or ``"default"``: the shipped default model, ``<package>/pretrained/default.safetensors``
  (:data:`SHIPPED_NAME`, :func:`shipped_path`; the only place that path is written);
- any other shipped name ``NAME``: ``<package>/pretrained/NAME.safetensors``;
- a former shipped name (:data:`SHIPPED_ALIASES`, e.g. ``"faithful"``): the model it became;
- a run folder written by ``restoreae train``: its ``weights/best.safetensors``, else
  ``weights/last.safetensors`` (:class:`RunPaths`);
- a ``.safetensors`` file (written by :func:`restoreae.models.io.save_model`);
- a ``.onnx`` file (written by ``restoreae export``);
- ``ARCH:FILE``: a registered architecture name and a ``.safetensors`` weights file, for weights
  saved as a bare ``state_dict`` (the architecture is rebuilt with ``create_model(ARCH)``).

This module imports neither torch nor the model code, so the ONNX Runtime path stays light.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from restoreae.errors import RestoreAEError

#: Folder of the models shipped inside the package.
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
#: Name of the shipped default model (``None`` and ``"default"`` both mean it).
SHIPPED_NAME = "default"
#: Former shipped names and the shipped model each now means: ``faithful`` (versions 1-10, the
#: model that changes only what is damaged) became ``default`` with version 10.
SHIPPED_ALIASES: dict[str, str] = {"faithful": SHIPPED_NAME}
WEIGHTS_SUFFIX = ".safetensors"
ONNX_SUFFIX = ".onnx"

_ARCH_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]+):(.+)$")


class ModelSpecError(RestoreAEError):
    """A model spec names nothing usable: missing file, empty run folder, unknown name."""


@dataclass(frozen=True)
class RunPaths:
    """The files of a run folder written by ``restoreae train``.

    ```
    RUN_DIR/
      config.yaml                      the resolved config
      weights/last.safetensors         latest exported weights (EMA when enabled)
      weights/best.safetensors         best validation PSNR so far
      weights/best-<step>.safetensors  the best k
      state/last.pt                    training state (optimizer, scheduler, RNG, step, ...)
      tb/                              TensorBoard events
      log.jsonl                        one JSON object per log / validation event
    ```
    """

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    @property
    def last_weights(self) -> Path:
        return self.weights_dir / "last.safetensors"

    @property
    def best_weights(self) -> Path:
        return self.weights_dir / "best.safetensors"

    def best_step_weights(self, step: int) -> Path:
        return self.weights_dir / f"best-{step}.safetensors"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def last_state(self) -> Path:
        return self.state_dir / "last.pt"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    def weights_to_use(self) -> Path | None:
        """``weights/best.safetensors``, else ``weights/last.safetensors``; None when neither."""
        for cand in (self.best_weights, self.last_weights):
            if cand.is_file():
                return cand
        return None


@dataclass(frozen=True)
class ModelSource:
    """A resolved model spec.

    ``path``: the weights file; ``format``: ``"safetensors"`` or ``"onnx"``; ``name``: a short
    display name (the shipped name, the run folder's name, or the file's stem); ``arch``: the
    architecture given as ``ARCH:FILE`` (None: the file's own header names it); ``spec``: the text
    as given.
    """

    path: Path
    format: Literal["safetensors", "onnx"]
    name: str
    arch: str | None = None
    spec: str = ""

    def digest(self) -> str:
        """SHA-256 (hex) of the weights file's bytes (and ``arch`` when given): the key of the
        cached ONNX export."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if self.arch:
            h.update(b"\0arch=" + self.arch.encode("utf-8"))
        return h.hexdigest()


def shipped_path(name: str = SHIPPED_NAME) -> Path:
    """The path of the shipped model ``name`` (whether or not it is installed)."""
    return PRETRAINED_DIR / f"{name}{WEIGHTS_SUFFIX}"


def shipped_names() -> list[str]:
    """Names of the shipped models installed here, sorted (``default`` first when present)."""
    names = sorted(
        p.name[: -len(WEIGHTS_SUFFIX)] for p in PRETRAINED_DIR.glob(f"*{WEIGHTS_SUFFIX}")
    )
    return sorted(names, key=lambda n: n != SHIPPED_NAME)


def _file_source(path: Path, spec: str, arch: str | None = None) -> ModelSource:
    suffix = path.suffix.lower()
    if suffix == ONNX_SUFFIX:
        if arch is not None:
            raise ModelSpecError(f"{spec}: an .onnx file carries its own architecture; drop ARCH:")
        return ModelSource(path, "onnx", path.stem, None, spec)
    if suffix != WEIGHTS_SUFFIX:
        raise ModelSpecError(
            f"{path}: not a model file (expected {WEIGHTS_SUFFIX} or {ONNX_SUFFIX}, or a run folder)"
        )
    name = path.stem
    if path.parent.name == "weights" and path.parent.parent.name:  # a run's weights file
        name = f"{path.parent.parent.resolve().name}-{path.stem}"
    return ModelSource(path, "safetensors", name, arch, spec)


def resolve_weights(spec: str | os.PathLike | None) -> ModelSource:
    """Resolve a model spec (see the module docstring) to a :class:`ModelSource`.

    Raises :class:`ModelSpecError` naming the spec when it is a missing file, a folder without
    weights, or a name that is neither shipped nor a file.
    """
    text = "" if spec is None else os.fspath(spec)
    name = text if Path(text).exists() else SHIPPED_ALIASES.get(text, text)
    if spec is None or name == SHIPPED_NAME:
        path = shipped_path()
        if not path.is_file():
            raise ModelSpecError(
                f"the shipped model {path} is missing: this installation has no trained default "
                "model yet; pass a model (a run folder, .safetensors or .onnx file written by "
                "`restoreae train` / `restoreae export`)"
            )
        return ModelSource(path, "safetensors", SHIPPED_NAME, None, text or SHIPPED_NAME)
    if not text.strip():
        raise ModelSpecError("empty model spec: give a shipped name, run folder or model file")
    path = Path(text).expanduser()
    if path.is_dir():
        found = RunPaths(path).weights_to_use()
        if found is None:
            raise ModelSpecError(
                f"{path}: folder holds no weights/best.safetensors or weights/last.safetensors "
                "(not a run folder of `restoreae train`)"
            )
        return ModelSource(found, "safetensors", path.resolve().name, None, text)
    if path.is_file():
        return _file_source(path, text)
    m = _ARCH_RE.match(text)
    if m and not path.exists():
        arch, file = m.group(1), Path(m.group(2)).expanduser()
        if not file.is_file():
            raise ModelSpecError(f"{text}: weights file {file} not found")
        if file.suffix.lower() != WEIGHTS_SUFFIX:
            raise ModelSpecError(f"{text}: ARCH:FILE needs a {WEIGHTS_SUFFIX} file, got {file}")
        return _file_source(file, text, arch=arch)
    shipped = shipped_path(name)
    if "/" not in text and os.sep not in text and shipped.is_file():
        return ModelSource(shipped, "safetensors", name, None, text)
    available = ", ".join(shipped_names()) or "none installed"
    kind = "file or folder" if path.suffix or "/" in text or os.sep in text else "model"
    raise ModelSpecError(
        f"{text}: no such {kind}; a model is a shipped name ({available}), a run folder, a "
        f"{WEIGHTS_SUFFIX} or {ONNX_SUFFIX} file, or ARCH:FILE{WEIGHTS_SUFFIX}"
    )
