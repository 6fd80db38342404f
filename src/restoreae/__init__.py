"""restoreae: neural restoration of damaged Chinese character images."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Restorer", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import restoreae` stays cheap (no torch import) for the CLI's --help.
    if name == "Restorer":
        from restoreae.restore.api import Restorer

        return Restorer
    raise AttributeError(name)
