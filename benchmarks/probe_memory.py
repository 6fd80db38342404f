"""Peak memory (ru_maxrss) of mapping one H×W picture to the model's glyph and back.

    python benchmarks/probe_memory.py H W     # e.g. 1 1000000 (a long thin strip)

Figures in docs/RELIABILITY.md; run each size in a fresh process (ru_maxrss only grows).
"""

import resource
import sys

import numpy as np

from restoreae.restore.preprocess import finish, prepare

h, w = map(int, sys.argv[1:3])
g = np.full((h, w), 255, np.uint8)
g[:, w // 3 : w // 3 + max(1, w // 2500)] = 0
p = prepare(g, 128)
out = finish(p, p.glyph)
print(h, w, "maxrss_MB", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
