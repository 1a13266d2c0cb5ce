"""Analysis of finished (or running) experiments, from their folders alone: no Ray, no GPU.

``load(path_or_paths)`` gives an ``Experiment`` with pandas tables (``trials``, ``history``,
``js``, ``js_summary``); ``analysis.views`` derives best trials, cross-seed statistics, the
predictive power of the label-free signal, hyperparameter importance and Pareto fronts;
``best_checkpoint(exp)`` is the newest checkpoint of the trial the search ranks first;
``python -m analysis`` writes Parquet tables, plots and a report.
"""

from analysis.checkpoints import best_checkpoint, best_trial
from analysis.load import Experiment, NotAnExperimentError, load
from analysis.views import best_trials, importance, pareto_front, seed_statistics, signal_correlation

__all__ = [
    "Experiment",
    "NotAnExperimentError",
    "best_checkpoint",
    "best_trial",
    "best_trials",
    "importance",
    "load",
    "pareto_front",
    "seed_statistics",
    "signal_correlation",
]
