"""restoreae.web"""
