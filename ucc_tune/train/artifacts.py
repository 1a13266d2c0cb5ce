"""The final artifacts of a run: JS matrix and class KDEs, test features with their labels and
clusters, the clustering model that assigns new images (``cluster_model.npz``), reconstructions,
the resolved config (file names in ``ucc_tune.schema``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucc_tune import feature_scores
from ucc_tune.metrics import match_clusters
from ucc_tune.models import UCCModel
from ucc_tune.schema import (
    CLUSTER_MODEL_FILE,
    CONFIG_FILE,
    JS_FILE,
    RECONSTRUCTIONS_FILE,
    TEST_FEATURES_FILE,
)
from ucc_tune.train.run import Run


def write_artifacts(run: Run, test: dict[str, Any], folder: Path | None, split: str = "test") -> None:
    """``js.npz``, ``<split>_features.npz``, ``cluster_model.npz``, ``config.json`` and
    ``reconstructions.png`` of the evaluation ``test`` of ``split`` into ``folder`` (nothing when
    ``None``)."""
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
    np.savez(folder / CLUSTER_MODEL_FILE, **cluster_model(run, test))
    run.config.to_json(folder / CONFIG_FILE)
    model = run.model_core
    if model.decoder is not None:
        save_reconstructions(model, run.data.images[split][:16], folder / RECONSTRUCTIONS_FILE)


def cluster_model(run: Run, test: dict[str, Any]) -> dict[str, Any]:
    """What assigns new images as the evaluation ``test`` assigned its own: the PCA (``pca_mean``
    ``(J,)``, ``pca_components`` ``(D, J)``; absent without PCA), per method with centres
    ``centers_<m>`` ``(K, D)`` and ``class_of_cluster_<m>`` ``(K,)``, the Hungarian matching of
    its clusters to the classes on the labelled validation split (validation features assigned to
    these centres), ``class_names``, ``cluster_dim`` and the ``encoder_digest`` of the weights."""
    model = run.model_core
    val = feature_scores.extract_features(model.encoder, run.data.images["val"], run.config.eval_batch_size)
    val_points = feature_scores.project(val, test["projection"])
    out: dict[str, Any] = {
        "methods": np.array(list(test["centers"])),
        "class_names": np.array(run.data.class_names),
        "cluster_dim": np.array(test["cluster_dim"]),
        "cluster_pca": np.array(run.config.cluster_pca),
        "encoder_digest": np.array(feature_scores.weights_digest(model.encoder)),
    }
    if test["projection"] is not None:
        out["pca_mean"], out["pca_components"] = test["projection"].mean, test["projection"].components
    for method, centers in test["centers"].items():
        clusters = feature_scores.assign(val_points, centers)[0]
        out[f"centers_{method}"] = centers
        out[f"class_of_cluster_{method}"] = match_clusters(run.data.labels["val"], clusters, len(centers))
    return out


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
