"""ucc-tune: hyperparameter search over Unique Class Count (UCC) weakly supervised clustering models.

By feature: ``config`` (every knob), ``data``, ``models``, ``train`` (one loop for one seed or
many), ``trained`` (evaluate, predict, export a trained model), ``search`` (the search command
and its plan) and ``ray_adapter`` (the one package that imports Ray); shared facts in
``catalog``, ``schema`` and ``storage``. ``import ucc_tune`` imports neither torch nor Ray.
"""
