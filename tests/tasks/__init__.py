"""Tests of the task layer (``langarith.experiments.tasks``).

A package, so that its ``conftest`` does not shadow ``tests/conftest.py``.
"""
