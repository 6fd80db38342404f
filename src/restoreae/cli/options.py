"""What every subcommand's arguments share: the help formatter, argument types, help strings."""

from __future__ import annotations

import argparse
from collections.abc import Callable


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default (``--help``) without repeating one the help text states."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, "", argparse.SUPPRESS, []):
            return text
        return super()._get_help_string(action)


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting whole numbers in ``[low, high]`` (one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


positive = int_at_least(1)
port = int_at_least(1, 65535)

MODEL_SPEC = (
    "a shipped model name, a run folder, a .safetensors or .onnx file, or ARCH:FILE.safetensors"
)
BACKENDS = ("auto", "onnx", "torch")
BACKEND_HELP = (
    "auto (default): ONNX Runtime on the CPU (exported once, cached beside the weights), "
    "PyTorch on a GPU; onnx or torch to choose"
)
