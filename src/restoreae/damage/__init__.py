"""restoreae.damage"""
