"""restoreae.data"""
