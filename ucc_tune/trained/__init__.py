"""Using a trained model: ``evaluate`` scores it on a split, ``predict`` clusters new images,
``export`` writes it with its clustering as one TorchScript file. The commands are
``python -m ucc_tune.evaluate``, ``python -m ucc_tune.predict`` and ``python -m ucc_tune.export``.
``checkpoints`` finds a run's or trial's checkpoint folders and the newest complete one (no torch,
no Ray: training resumes with it and ``analysis`` names the best trial's with it).
"""
