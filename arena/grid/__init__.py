"""Grids: one command over every combination of option values, each combination (a
cell) an ordinary run directory, run on this machine or as Ray Tune trials.

- ``arena.artifacts.grid``: the grid file (TOML), ``grid.json`` and the cells' statuses
- ``commands``: what a grid can run, its checks, resuming and summaries
- ``cells``: one cell, in the process that runs it
- ``driver``: ``run_grid`` (checks every cell, runs the unfinished, gathers results)
"""

from arena.grid.driver import run_grid

__all__ = ["run_grid"]
