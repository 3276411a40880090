"""``arena report RUN_DIR``: one self-contained HTML page of a run, read like a figure.

For the run directory and every run nested in it, a section: the finding first (its
headline table, every score with its 95% interval, the finding's rows in bold beside
the baselines) with a video of an episode, then the plots, then the configuration and
metadata folded away. The page needs nothing else to be viewed (no network, no file
beside it, unless a video is too large to embed).

Modules, one job each: ``discovery`` (where the runs and records are), ``reading``
(the typed files of a run, through ``arena.artifacts.run``), ``tables`` (cells as
text), ``plots`` (matplotlib), ``episodes`` (sample episodes and videos), ``media``
(embedding), ``html`` (the Jinja2 templates in ``templates/``), ``writer``
(``write_report``).
"""

from arena.report.discovery import MARKER, ReportError
from arena.report.writer import write_report

__all__ = ["MARKER", "ReportError", "write_report"]
