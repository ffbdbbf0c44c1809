"""Persistence behind one interface; SQLite in the server's data directory is the default."""

from .base import Ban, Retention, Store, StoredMessage
from .sqlite import SQLiteStore

__all__ = ["Ban", "Retention", "SQLiteStore", "Store", "StoredMessage"]
