"""restoreae.train: YAML config dataclasses (``config``), the step loop (``engine``) and its parts
(``setup``: the run state; ``batches``: damaged batches on the device; ``step``: backward, clip
and optimizer step; ``saver``: best-k checkpoints; ``validate``: validation and ``--eval-only``;
``logger``: bar, log.jsonl, TensorBoard; ``build``: model and parameter groups), kill-safe
checkpoints and the run folder (``checkpoint``), torchrun/DDP helpers (``distributed``), losses,
LR/weight-decay schedules and the weight EMA.

Nothing is imported here (``import restoreae.train`` stays cheap); use e.g.
``from restoreae.train.engine import train``. See docs/TRAINING.md.
"""
