"""traderseg: segment the traders of a crypto derivatives venue by how they trade."""

from traderseg.errors import (
    ConfigError,
    DataError,
    NotFittedError,
    SchemaError,
    TradersegError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "NotFittedError",
    "SchemaError",
    "TradersegError",
    "__version__",
]
