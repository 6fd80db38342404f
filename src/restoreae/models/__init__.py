"""restoreae.models"""
