"""restoreae.train"""
