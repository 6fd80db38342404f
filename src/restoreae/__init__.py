"""restoreae: neural restoration of damaged Chinese character images."""

from __future__ import annotations

from restoreae.lazy import lazy_exports

__version__ = "0.1.0"

__all__ = ["Restorer", "__version__"]


# Lazy so that `import restoreae` stays cheap (no torch import) for the CLI's --help.
__getattr__, __dir__ = lazy_exports(globals(), {"Restorer": "restore.api"})
