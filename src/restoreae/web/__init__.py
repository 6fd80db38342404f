"""The local web page started by ``restoreae serve``: a FastAPI app (:mod:`restoreae.web.app`)
serving one HTML page (``static/``) that restores uploaded character images."""
