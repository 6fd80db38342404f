"""restoreae.evaluate"""
