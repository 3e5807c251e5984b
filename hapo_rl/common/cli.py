"""Command-line plumbing shared by the entry points: bad input is one line and exit status 2."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises ``UsageError`` instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)
