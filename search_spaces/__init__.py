"""Named search spaces, one file per question (the loader is ``ucc_tune.search.spaces``).

Each file has a docstring with the question it answers and ``def space(trial) -> dict`` that
only calls ``trial.suggest_*`` (``Config`` field names as parameter names) and returns constants
to fix alongside. Optional: ``GRID`` (parameter -> values) to search exhaustively instead of by
TPE, and ``NUM_SAMPLES``, the number of trials when ``--num-samples`` is not given.
"""
