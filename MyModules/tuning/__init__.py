"""Session 3: hyperparameter search with Optuna (docs/03).

* ``space``     the search space (a dataclass) and the models it builds
* ``storage``   where a study lives (journal file on Drive, or a database server), its name, heartbeats
* ``objective`` the course's objective (a training run per trial, checkpoints, pruning) and the workers
* ``results``   a study's trials as a table, CSV and plots; the best trial's model

``from MyModules import tuning`` gives the names of ``objective`` (``tuning.Objective``,
``tuning.run_worker``, ``tuning.study_for``), as the session-3 notebooks use them.
"""

from .objective import *  # noqa: F403
