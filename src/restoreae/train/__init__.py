"""restoreae.train: YAML config dataclasses (``config``), the train/eval loops (``engine``),
kill-safe checkpoints and the run folder (``checkpoint``), torchrun/DDP helpers
(``distributed``), losses, LR/weight-decay schedules and the weight EMA.

Nothing is imported here (``import restoreae.train`` stays cheap); use e.g.
``from restoreae.train.engine import train``. See docs/TRAINING.md.
"""
