"""Training: ``train(config, session)``, the one loop that runs in a test, a notebook, an
in-process Tune trial and every rank of a Ray Train (DDP) job, on one seed or several.

- ``loop``: ``train`` (the driver), setup, the epoch, validation;
- ``scoring``: the clustering evaluation of a split and the scores made of it;
- ``seeds``: the seeds' bookkeeping for ``train``: each seed's session, random generators and
  part of a checkpoint, the mean report of several;
- ``run``: ``Run``, what one seed's training holds;
- ``session``: the ``Session`` protocol, ``LocalSession`` and ``RunFolder`` (the files of a run);
- ``checkpoint``: exact-resume checkpoints, and ``load_state``, the one reader of a ``state.pt``;
- ``artifacts``: the final artifacts;
- ``schedule``: the learning-rate schedule;
- ``stopping``: the best epoch so far and early stopping;
- ``failures``: the errors that stop a run (non-finite loss, collapsed features), not retried;
- ``__main__``: ``python -m ucc_tune.train``.
"""

from ucc_tune.train.failures import FeatureCollapseError, NonFiniteLossError
from ucc_tune.train.loop import setup, train
from ucc_tune.train.run import Run
from ucc_tune.train.session import LocalSession, RunFolder, Session, placement, resolve_device

__all__ = [
    "FeatureCollapseError",
    "LocalSession",
    "NonFiniteLossError",
    "Run",
    "RunFolder",
    "Session",
    "placement",
    "resolve_device",
    "setup",
    "train",
]
