"""restoreae.restore"""
