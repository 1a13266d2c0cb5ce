"""The search: ``python -m ucc_tune.search --space NAME``, a Ray Tune + Optuna search over UCC
configurations, decided in full before Ray starts. Ray itself is ``ucc_tune.ray_adapter``'s.

- ``command``: the command itself: the plan handed to Ray, the tables written, the summary;
- ``flags``: the command's flags and the checks of the flags alone;
- ``resolve``: the plan resolved from the flags, with every check that needs the space or data;
- ``plan``: the frozen ``SearchPlan`` (with the resources each trial asks for, ``ucc_tune.resources``);
- ``spaces``: the named spaces of ``search_spaces/`` and a user's own ``.py`` file;
- ``samplers``: the Optuna sampler of a space, and how a finished trial is told to the study;
- ``prefill``: what the study holds before its first suggestion (``--enqueue``, ``--warm-start``);
- ``ranking``: which configuration is best and how sure that is (also used by ``analysis``);
- ``progress``: the live view of the trials; ``summary``: what a finished search prints;
- ``trackers``: the ``--log-to`` trackers, checked before Ray starts;
- ``tables``: ``search.json`` and ``trials.parquet``;
- ``lock``: one search at a time writes an experiment folder.

Nothing here imports torch or Ray at import time.
"""
