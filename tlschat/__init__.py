"""tlschat: a small secure multi-user chat over a TLS-like protocol of its own."""

__version__ = "0.1.0"
