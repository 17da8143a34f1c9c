"""Tests of the task layer (``langarith.tasks``).

A package, so that its ``conftest`` does not shadow ``tests/conftest.py``.
"""
