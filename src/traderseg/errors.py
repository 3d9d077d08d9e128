"""Exceptions raised by traderseg.

Every error the library raises on purpose derives from :class:`TradersegError`, so an
adapter (the CLI, the service) can turn all of them into a clean message at its edge.
"""

from __future__ import annotations


class TradersegError(Exception):
    """Base class of every error traderseg raises on purpose."""


class SchemaError(TradersegError, ValueError):
    """Input does not follow a data contract (missing column, wrong type, bad value)."""


class DataError(TradersegError, ValueError):
    """Input follows the contract but cannot be used (empty, degenerate, out of range)."""


class StoreError(TradersegError):
    """The store cannot take what a command writes (a table of another shape, a failed write)."""


class ConfigError(TradersegError, ValueError):
    """A configuration or mapping file is invalid."""


class NotFittedError(TradersegError, AttributeError):
    """A model was used before it was fitted."""


class ModelVersionError(TradersegError):
    """A saved model does not match the running feature catalogue or library."""


class SinkError(TradersegError):
    """An output (a Redis stream, a file, stdout) cannot take what is written to it."""


class SinkUnavailable(SinkError):
    """An output is out of reach for now (a Redis server gone away); retrying may succeed."""
