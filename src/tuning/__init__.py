"""Hyperparameter search with Optuna (``python -m src.tune``): search spaces, storages, trials, pruning, reports."""

import warnings

from optuna.exceptions import ExperimentalWarning

# Optuna marks its matplotlib plots and the retry helpers experimental, and renamed the stale-trial callback
# argument in 4.9 (the old name still works): nothing a user of src.tune can act on.
warnings.filterwarnings("ignore", category=ExperimentalWarning, module=r"optuna|src\.tuning")
warnings.filterwarnings(
    "ignore", message=r"`failed_trial_callback` has been deprecated", category=FutureWarning
)
