"""Exceptions for bad user input; the CLI prints their message and exits with status 2."""


class RestoreAEError(Exception):
    """A user-facing error whose message names the offending file, key or value."""


class ConfigError(RestoreAEError):
    """A configuration file or override is invalid (unknown key, wrong type, bad value)."""


class DataError(RestoreAEError):
    """Input data is missing, unreadable or inconsistent."""
