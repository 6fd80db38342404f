"""restoreae.evaluate: how well a restoration model works, measured the way a researcher trusts.

- :mod:`~restoreae.evaluate.metrics`: PSNR, SSIM, MAE (uint8 or float, float64, no crop).
- :mod:`~restoreae.evaluate.ocr`: :class:`OcrJudge`, PP-OCRv4 recognition as a readability judge.
- :mod:`~restoreae.evaluate.baselines`: ``identity`` and ``classical`` (median + morphology +
  threshold) restorations.
- :mod:`~restoreae.evaluate.grid`: the seed's damaged | standard | truth | restored picture.
- :mod:`~restoreae.evaluate.report`: leaderboard (Markdown, JSON) and the self-contained HTML page.
- :mod:`~restoreae.evaluate.runner`: ``restoreae eval`` (:func:`eval_command`).
- :mod:`~restoreae.evaluate.realset`: labelled real images (CSV or folder) and their
  normalisation into clean ground truths.
- :mod:`~restoreae.evaluate.quality`: ``restoreae eval --suite / --real``: the quality table,
  restored through the public :class:`~restoreae.restore.api.Restorer`;
  :mod:`~restoreae.evaluate.quality_report` writes its Markdown, JSON and CSV.

Submodules are imported explicitly (no heavy imports here, so ``restoreae --help`` stays fast).
"""
