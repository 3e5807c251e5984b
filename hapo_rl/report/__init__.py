"""The report: tables, figures and ``RESULTS.md`` from saved results, never training.

Its data flows one way, each module importing only those listed before it:

- ``stats``: IQM, bootstrap intervals, per-run statistics of a curve (numpy and pandas only);
- ``results``: a results folder loaded and checked into ``Results``;
- ``tables`` and ``figures``: side by side, from ``Results``;
- ``claims``: the paper's claims tested, the text of ``RESULTS.md`` and README's headline;
- ``cli``: ``python -m hapo_rl.report`` on top.
"""

from hapo_rl.report.cli import main
from hapo_rl.report.results import Results, load

__all__ = ["Results", "load", "main"]
