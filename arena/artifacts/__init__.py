"""The one typed definition of every file the arena's tools exchange.

Each file type is a frozen dataclass with a schema version, ``to_json()`` and a
checking ``from_json()``; writers build them, readers get them, nobody guesses a shape.

- records: ``RecordManifest`` (+ ``EpisodeEntry``; who sat where is
  ``agents.specs.PolicyRef``, read back by ``read_policy_ref``) in ``record``
- run directories: ``RunResults`` and friends in ``run``
- adversary training runs: ``TrainingRunFiles``, ``TrainingState``, ``NormStats`` in
  ``training_run``
"""

from arena.artifacts.base import ArtifactError, read_json, write_json
from arena.artifacts.record import (
    MANIFEST,
    EpisodeEntry,
    RecordError,
    RecordManifest,
    check_member_name,
    episode_filename,
    member_path,
    read_policy_ref,
)
from arena.artifacts.run import RunResults
from arena.artifacts.run_config import RunConfig
from arena.artifacts.run_fields import RunFileError
from arena.artifacts.run_figures import BarChart, Figure, LineChart, Series
from arena.artifacts.run_samples import SampleRecipe
from arena.artifacts.run_tables import Cell, Score, Table

__all__ = [
    "MANIFEST",
    "ArtifactError",
    "BarChart",
    "Cell",
    "EpisodeEntry",
    "Figure",
    "LineChart",
    "RecordError",
    "RecordManifest",
    "RunConfig",
    "RunFileError",
    "RunResults",
    "SampleRecipe",
    "Score",
    "Series",
    "Table",
    "check_member_name",
    "episode_filename",
    "member_path",
    "read_json",
    "read_policy_ref",
    "write_json",
]
