"""Overhead benchmark: the gateway against a direct call, on one core.

Run ``python -m tests.benchmarks.overhead`` (``--help`` for options).
"""
