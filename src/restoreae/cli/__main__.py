"""``python -m restoreae.cli`` (also ``torchrun -m restoreae.cli train``): `restoreae`."""

import sys

from restoreae.cli import main

sys.exit(main())
