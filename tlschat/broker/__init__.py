"""Brokers: how a server's chat events reach every server of its cluster.

``LocalBroker`` (the default) applies each event at once in this process; ``RedisBroker`` commits
it to a Redis stream that every server of the cluster follows, in one order for all.
"""

from .base import Broker
from .local import LocalBroker

__all__ = ["Broker", "LocalBroker"]
