"""The command line: a thin shell over the Python API (``crystalmela --help``)."""
from crystalmela.cli.main import main

__all__ = ["main"]
