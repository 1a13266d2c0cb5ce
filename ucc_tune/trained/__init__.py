"""Using a trained model: ``evaluate`` scores it on a split, ``predict`` clusters new images,
``export`` writes it with its clustering as one TorchScript file. The commands are
``python -m ucc_tune.evaluate``, ``python -m ucc_tune.predict`` and ``python -m ucc_tune.export``.
The checkpoint to use is found by ``ucc_tune.checkpoints``, the finder that training and
``analysis`` share.
"""
