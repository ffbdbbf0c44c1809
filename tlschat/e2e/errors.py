"""Errors the end-to-end layer raises on purpose; each module subclasses ``E2eError``."""

from __future__ import annotations


class E2eError(Exception):
    """Something the end-to-end layer refused; the text says what."""


class UnreadablePickle(E2eError):
    """A pickle that does not open with this pickle key: a wrong key, or damaged or other data."""
