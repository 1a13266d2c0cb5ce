"""The final artifacts of a run: JS matrix and class KDEs, test features with their labels and
clusters, reconstructions, the resolved config (file names in ``ucc_tune.schema``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucc_tune.models import UCCModel
from ucc_tune.schema import CONFIG_FILE, JS_FILE, RECONSTRUCTIONS_FILE, TEST_FEATURES_FILE
from ucc_tune.train.run import Run


def write_artifacts(run: Run, test: dict[str, Any], folder: Path | None, split: str = "test") -> None:
    """``js.npz``, ``<split>_features.npz``, ``config.json`` and ``reconstructions.png`` of the
    evaluation ``test`` of ``split`` into ``folder`` (nothing when ``None``)."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    names = np.array(run.data.class_names)
    np.savez(
        folder / JS_FILE,
        js_matrix=test["js_matrix"],
        class_distributions=test["distributions"],
        classes=test["classes"],
        class_names=names[test["classes"]],
    )
    assignments = {f"clusters_{m}": pred for m, pred in test["assignments"].items()}
    np.savez(
        folder / TEST_FEATURES_FILE.replace("test", split, 1),
        features=test["features"],
        labels=run.data.labels[split],
        class_names=names,
        **assignments,
    )
    run.config.to_json(folder / CONFIG_FILE)
    model = run.model_core
    if model.decoder is not None:
        save_reconstructions(model, run.data.images[split][:16], folder / RECONSTRUCTIONS_FILE)


@torch.no_grad()
def save_reconstructions(model: UCCModel, images: torch.Tensor, path: Path) -> None:
    """A two-row PNG grid: inputs on top, their reconstructions below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert model.decoder is not None
    was_training = model.training
    model.eval()
    recon = model.decoder(model.encoder(images)).float().cpu()
    model.train(was_training)
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 1.8), squeeze=False)
    for i in range(n):
        for row, tensor in enumerate((images.float().cpu(), recon)):
            img = tensor[i].permute(1, 2, 0).numpy()
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
            axes[row][i].imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray")
            axes[row][i].axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
