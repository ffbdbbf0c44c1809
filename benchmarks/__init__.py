"""Benchmarks: tlschat's server against an asyncio+ssl relay, the same relay on TCP, and ngircd.

Run ``python -m benchmarks --quick`` (or ``make bench-quick``); docs/BENCHMARKS.md explains the
method and the figures. Nothing here is imported by tlschat or its tests.
"""
