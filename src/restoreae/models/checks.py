"""Checks of a weights file's header before anything is built from it.

A model file's header is data from outside (a download, a colleague's run): a size of 65536 or a
latent of 2**31 would make ``create_model`` allocate gigabytes or terabytes, a negative size
reaches OpenCV as an assertion. :func:`check_config` and :func:`check_metadata` check every field
the package reads — type and range — and raise :class:`~restoreae.errors.DataError` naming the
file and the field. The bounds are far above anything trained here (img_size 224, latent 512,
ViT width 192) and far below what exhausts a machine.
"""

from __future__ import annotations

import math
from typing import Any

from restoreae.data.reference_fit import REFERENCE_FITS
from restoreae.errors import DataError

#: Largest square input side a model file may declare (pixels).
MAX_IMG_SIDE = 1024
#: Inclusive bounds of the integer fields of a model config.
_CONFIG_INTS: dict[str, tuple[int, int]] = {
    "in_chans": (1, 2),
    "img_size": (32, MAX_IMG_SIDE),
    "latent_dim": (1, 8192),
    "latent_chans": (1, 1024),
    "head_chans": (1, 1024),
    "width": (4, 256),
    "embed_dim": (8, 4096),
    "depth": (1, 64),
    "num_heads": (1, 64),
    "decoder_dim": (8, 4096),
    "decoder_depth": (1, 64),
    "decoder_heads": (1, 64),
    "patch_size": (1, 64),
}
#: Inclusive float bounds (a fraction of tokens / of paths dropped).
_CONFIG_FLOATS: dict[str, tuple[float, float]] = {
    "mask_ratio": (0.0, 0.99),
    "drop_path_rate": (0.0, 1.0),
    "mlp_ratio": (0.25, 16.0),
}
#: Any other config field: a short string, a boolean or a number of at most this size.
_OTHER_MAX = 1_000_000
_CONFIG_BOOLS = ("residual",)
#: ``restoreae.models.blocks.PAD_MODES``, repeated so that this module needs no torch (the ONNX
#: path checks metadata too); a test keeps the two equal.
PAD_MODES = ("zeros", "replicate")
#: ``restoreae.models.blocks.OUTPUTS``, repeated for the same reason.
OUTPUTS = ("direct", "composite")
_NAME_MAX = 200
_TEXT_MAX = 4096


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _bad(source: str, where: str, key: str, value: Any, expected: str) -> DataError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return DataError(f"{source}: {where} field '{key}' = {shown} is invalid: expected {expected}")


def check_config(config: Any, source: str) -> dict[str, Any]:
    """Check a model config (the header's ``config``) field by field; return it unchanged.

    ``name``: a short string; the integer fields (``in_chans`` 1–2, ``img_size`` 32–1024 and a
    multiple of 32, ``latent_dim``, widths, depths, heads) within :data:`_CONFIG_INTS`; rates
    within [0, 1]; ``residual`` a boolean; ``pad_mode`` / ``output`` one of the blocks' padding modes / output kinds. Fields
    this module does not know must be plain scalars (a short string, a boolean, a number of at
    most :data:`_OTHER_MAX`); ``create_model`` rejects the ones no model takes.
    """
    if not isinstance(config, dict):
        raise DataError(f"{source}: model header 'config' must be a JSON object")
    name = config.get("name")
    if not isinstance(name, str) or not name or len(name) > _NAME_MAX:
        raise _bad(source, "config", "name", name, "a registered model name")
    for key, (lo, hi) in _CONFIG_INTS.items():
        if key in config:
            v = config[key]
            if not _is_int(v) or not lo <= v <= hi:
                raise _bad(source, "config", key, v, f"a whole number from {lo} to {hi}")
    if "img_size" in config and config["img_size"] % 32:
        raise _bad(source, "config", "img_size", config["img_size"], "a multiple of 32")
    for key, (lo, hi) in _CONFIG_FLOATS.items():
        if key in config:
            v = config[key]
            if not _is_number(v) or not math.isfinite(v) or not lo <= v <= hi:
                raise _bad(source, "config", key, v, f"a number from {lo} to {hi}")
    for key in _CONFIG_BOOLS:
        if key in config and not isinstance(config[key], bool):
            raise _bad(source, "config", key, config[key], "true or false")
    if "pad_mode" in config and config["pad_mode"] not in PAD_MODES:
        raise _bad(source, "config", "pad_mode", config["pad_mode"], " or ".join(PAD_MODES))
    if "output" in config and config["output"] not in OUTPUTS:
        raise _bad(source, "config", "output", config["output"], " or ".join(OUTPUTS))
    known = {"name", *_CONFIG_INTS, *_CONFIG_FLOATS, *_CONFIG_BOOLS, "pad_mode", "output"}
    for key, v in config.items():
        if key in known:
            continue
        scalar = isinstance(v, bool) or (isinstance(v, str) and len(v) <= _NAME_MAX)
        number = _is_number(v) and math.isfinite(v) and abs(v) <= _OTHER_MAX
        if not (scalar or number):
            raise _bad(
                source, "config", key, v, f"a short string, true/false or a number ≤ {_OTHER_MAX}"
            )
    return config


def check_metadata(meta: Any, source: str) -> dict[str, Any]:
    """Check a weights file's ``metadata`` (or an ONNX file's) field by field; return it.

    ``img_size`` 16–1024 and ``in_chans`` 1–2 (whole numbers), ``reference_font`` a string or
    null, ``reference_face_index`` 0–255, ``traditional`` / ``ema`` booleans, ``step`` /
    ``epoch`` / ``corpus_size`` / ``traditional_chars`` whole numbers ≥ 0 (or null), ``charset`` a string or null,
    ``val_writers`` / ``test_writers`` lists of strings, ``val_*`` numbers, ``reference_fit`` one of
    :data:`~restoreae.data.reference_fit.REFERENCE_FITS` or null. Other keys are kept
    but never read.
    """
    if not isinstance(meta, dict):
        raise DataError(f"{source}: model header 'metadata' must be a JSON object")
    ints = {"img_size": (16, MAX_IMG_SIDE), "in_chans": (1, 2), "reference_face_index": (0, 255)}
    for key, (lo, hi) in ints.items():
        v = meta.get(key)
        if v is not None and (not _is_int(v) or not lo <= v <= hi):
            raise _bad(source, "metadata", key, v, f"a whole number from {lo} to {hi}")
    for key in ("step", "epoch", "corpus_size", "traditional_chars"):
        v = meta.get(key)
        if v is not None and (not _is_int(v) or v < 0):
            raise _bad(source, "metadata", key, v, "a whole number ≥ 0")
    for key in ("traditional", "ema"):
        v = meta.get(key)
        if v is not None and not isinstance(v, bool):
            raise _bad(source, "metadata", key, v, "true or false")
    for key in ("reference_font", "charset"):
        v = meta.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > _TEXT_MAX or "\0" in v):
            raise _bad(source, "metadata", key, v, f"a string of at most {_TEXT_MAX} characters")
    fit = meta.get("reference_fit")
    if fit is not None and fit not in REFERENCE_FITS:
        raise _bad(source, "metadata", "reference_fit", fit, f"one of {list(REFERENCE_FITS)}")
    for key in ("val_writers", "test_writers"):
        v = meta.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise _bad(source, "metadata", key, v, "a list of writer names")
    for key, v in meta.items():
        if key.startswith("val_") and key != "val_writers" and v is not None and not _is_number(v):
            raise _bad(source, "metadata", key, v, "a number")
    return meta
