"""Data: sources (datasets -> arrays), stats (normalisation), bags (sampling), augment, and
``loading.load_data(config)`` (normalised tensors of every split).

The package imports nothing heavy itself: ``ucc_tune.config`` reads the dataset catalogue of
``sources`` (numpy only) without pulling in torch.
"""
