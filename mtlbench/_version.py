"""The package version: one place, read by ``pyproject.toml`` (setuptools ``attr``) and the code."""

__version__ = "0.1.0"
