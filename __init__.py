"""mem: a personal knowledge memory."""

__version__ = "0.1.0"
