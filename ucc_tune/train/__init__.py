"""Training: ``train(config, session)``, the one loop that runs in a test, a notebook, an
in-process Tune trial and every rank of a Ray Train (DDP) job.

- ``loop``: setup, the epoch, validation, clustering evaluation, ``train_run`` (one seed);
- ``seeds``: ``train``, one configuration on ``config.seeds`` seeds reported as their mean;
- ``session``: the ``Session`` protocol, ``LocalSession`` and ``RunFolder`` (the files of a run);
- ``checkpoint``: exact-resume checkpoints, and ``load_state``, the one reader of a ``state.pt``;
- ``artifacts``: the final artifacts;
- ``__main__``: ``python -m ucc_tune.train``.
"""

from ucc_tune.train.loop import FeatureCollapseError, NonFiniteLossError, setup
from ucc_tune.train.run import Run
from ucc_tune.train.seeds import train
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
