"""The Ray adapter: the only package of ``ucc_tune`` that imports Ray (2.60, Train V2).

It translates: a ``SearchPlan`` becomes a ``Tuner`` (``tuner``: trainable, resources, searcher,
scheduler), a ``Config`` with ``num_workers >= 1`` a ``TorchTrainer`` (``trainable``). By concern:

- ``cluster``: starting or joining Ray, and the resource flags mapped to Ray (DDP backend included);
- ``sessions``: ``train``'s sessions in a Tune trial and on a Ray Train rank;
- ``trainable``: what one trial runs, and a DDP run without Tune;
- ``tuner``: the ``Tuner`` of a plan, run or resumed;
- ``searcher``: the Optuna searcher and the study kept true across a killed driver;
- ``budget``: the search's time budget;
- ``callbacks``: the progress view, the experiment trackers, Ray's chatter quieted;
- ``rows``: a trial's recorded epochs, reported to Tune again on a restore.
"""

from ucc_tune.ray_adapter.cluster import RayResources, ray_resources, start_ray
from ucc_tune.ray_adapter.trainable import train_distributed
from ucc_tune.ray_adapter.tuner import experiment_exists, make_tuner, run_search

__all__ = [
    "RayResources",
    "experiment_exists",
    "make_tuner",
    "ray_resources",
    "run_search",
    "start_ray",
    "train_distributed",
]
