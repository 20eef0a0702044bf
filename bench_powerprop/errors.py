"""The error every config check raises (torch- and import-free, so any module may raise it)."""


class OptionError(ValueError):
    """A bad option; ``str(error)`` is one line: ``<field path>: <what is wrong>``."""
