"""Config: validation messages, unknown keys, string coercion and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ucc_tune.config import Config, ConfigError, field_names
from ucc_tune.config.flags import parse_assignments


def test_defaults_are_valid_and_follow_the_paper() -> None:
    c = Config()
    assert (c.num_features, c.num_bins, c.kde_sigma) == (10, 11, 0.1)
    assert (c.head_hidden1, c.head_hidden2, c.alpha) == (384, 192, 0.5)
    assert (c.bag_size, c.ucc_min, c.ucc_max, c.bags_per_batch) == (16, 1, 4, 20)
    assert c.normalization == "per_image" and c.dataset == "digits"
    assert c.paper_padding == "keras"  # what the authors' released weights were trained with


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"ucc_min": 0}, "ucc_min=0 must be >= 1"),
        ({"ucc_min": 3, "ucc_max": 2}, "ucc_min=3 must be <= ucc_max=2"),
        ({"ucc_max": 11}, "ucc_max=11 must be <= the 10 classes of dataset 'digits'"),
        ({"bag_size": 3}, "bag_size=3 must be >= ucc_max=4"),
        ({"bag_size": 0}, "bag_size=0 must be >= 1"),
        ({"kde_sigma": 0.0}, "kde_sigma=0.0 must be > 0"),
        ({"kde_sigma": -1.0}, "kde_sigma=-1.0 must be > 0"),
        ({"alpha": 1.5}, "alpha=1.5 must be in [0, 1]"),
        ({"alpha": -0.1}, "alpha=-0.1 must be in [0, 1]"),
        ({"num_bins": 1}, "num_bins=1 must be >= 2"),
        ({"num_features": 0}, "num_features=0 must be >= 1"),
        ({"bags_per_label": 0}, "bags_per_label=0 must be >= 1"),
        ({"eval_bags_per_label": 0}, "eval_bags_per_label=0"),
        ({"dataset": "imagenet"}, "dataset='imagenet' is unknown; choose one of digits"),
        ({"model": "vit"}, "model='vit' is not allowed; choose one of paper"),
        ({"paper_padding": "same"}, "paper_padding='same' is not allowed; choose one of keras, symmetric"),
        ({"dataset": "mnist_sample", "ucc_max": 11}, "the 10 classes of dataset 'mnist_sample'"),
        (
            {"model": "paper", "encoder_dropout": 0.2},
            "model='paper' has no dropout layers; the models with dropout are linear",
        ),
        ({"dataset": "imagenet"}, "dataset='imagenet' is unknown; choose one of digits"),
        ({"normalization": "zca"}, "normalization='zca' is not allowed; choose one of per_image"),
        ({"recon_loss": "l1"}, "recon_loss='l1' is not allowed"),
        ({"device": "tpu"}, "device='tpu' is not allowed"),
        ({"lr": 0.0}, "lr=0.0 must be > 0"),
        ({"weight_decay": -1.0}, "weight_decay=-1.0"),
        ({"grad_clip": -1.0}, "grad_clip=-1.0"),
        ({"epochs": 0}, "epochs=0 must be >= 1"),
        ({"steps_per_epoch": 0}, "steps_per_epoch=0"),
        ({"eval_every": 0}, "eval_every=0"),
        ({"val_fraction": 0.0}, "val_fraction=0.0 must be in (0, 1)"),
        ({"test_fraction": 1.0}, "test_fraction=1.0 must be in (0, 1)"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction = 1 must be < 1"),
        ({"head_dropout": 1.0}, "head_dropout=1.0 must be in [0, 1)"),
        ({"encoder_dropout": -0.1}, "encoder_dropout=-0.1"),
        ({"rcc_weight": -1.0}, "rcc_weight=-1.0 must be >= 0"),
        ({"consistency_weight": -1.0}, "consistency_weight=-1.0"),
        ({"consistency_temperature": 0.0}, "consistency_temperature=0.0 must be > 0"),
        ({"cluster_methods": "kmeans,dbscan"}, "unknown method(s) dbscan; choose from kmeans, spectral"),
        ({"test_cluster_methods": ""}, "test_cluster_methods='' must name at least one method"),
        ({"eval_batch_size": 0}, "eval_batch_size=0"),
        ({"cluster_pca": 2.5}, "cluster_pca=2.5 must be 0 (no PCA), a whole number of components >= 1"),
        ({"cluster_pca": -0.5}, "cluster_pca=-0.5 must be 0 (no PCA)"),
        ({"cluster_pca": 11.0}, "cluster_pca=11 components but num_features=10"),
        ({"seed": -1}, "seed=-1 must be >= 0"),
        ({"split_seed": -1}, "split_seed=-1"),
        ({"num_workers": -1}, "num_workers=-1"),
        ({"num_threads": -1}, "num_threads=-1"),
        ({"checkpoint_every": 0}, "checkpoint_every=0"),
        ({"keep_checkpoints": 0}, "keep_checkpoints=0"),
        ({"kde_max_elements": 0}, "kde_max_elements=0"),
        ({"head_hidden1": 0}, "head_hidden1=0"),
        ({"head_hidden2": 0}, "head_hidden2=0"),
        ({"augment_max_angle": 200.0}, "augment_max_angle=200.0 must be in [0, 180]"),
        ({"bag_size": 2.5}, "bag_size=2.5 must be of type int, got float"),
        ({"amp": "yes"}, "amp='yes' must be of type bool, got str"),
        ({"lr": float("nan")}, "lr=nan must be a finite number"),
    ],
)
def test_every_invalid_value_is_named_with_what_is_allowed(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config(**changes)
    assert fragment in str(err.value)


def test_dataclasses_replace_validates_too() -> None:
    with pytest.raises(ConfigError, match="alpha=2"):
        dataclasses.replace(Config(), alpha=2.0)
    assert dataclasses.replace(Config(), alpha=1.0).use_decoder is False


def test_unknown_keys_are_rejected_with_the_known_keys() -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"alpah": 0.3, "bag_size": 8})
    message = str(err.value)
    assert "unknown config key(s) 'alpah'" in message
    for name in field_names():
        assert name in message


def test_strings_are_coerced_like_the_command_line_gives_them() -> None:
    c = Config.from_dict(
        parse_assignments(["alpha=0.25", "bag_size=16", "amp=true", "download=0", "lr=1e-4", "model=conv"])
    )
    assert (c.alpha, c.bag_size, c.amp, c.download, c.lr, c.model) == (0.25, 16, True, False, 1e-4, "conv")
    assert Config.from_dict({"epochs": "3.0"}).epochs == 3


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (["bag_size=big"], "bag_size='big' is not an integer"),
        (["alpha=half"], "alpha='half' is not a number"),
        (["amp=maybe"], "amp='maybe' is not a boolean"),
        (["bag_size=8.5"], "bag_size=8.5 must be of type int"),
    ],
)
def test_bad_strings_are_named(items: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        Config.from_dict(parse_assignments(items))


def test_malformed_assignment() -> None:
    with pytest.raises(ConfigError, match="expects key=value, got 'alpha'"):
        parse_assignments(["alpha"])


def test_json_round_trip(tmp_path) -> None:
    c = Config(alpha=0.7, bag_size=16, model="linear", recon_loss="ssim", amp=True)
    assert Config.from_json(c.to_json()) == c
    path = tmp_path / "config.json"
    c.to_json(path)
    assert Config.from_json(path) == c
    assert json.loads(path.read_text()) == c.to_dict()


def test_bad_json_is_reported(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be an object"):
        Config.from_json(path)
    path.write_text("{bad")
    with pytest.raises(ConfigError, match="is not valid"):
        Config.from_json(path)


def test_derived_values() -> None:
    c = Config(ucc_min=2, ucc_max=4, bags_per_label=3, rcc_weight=0.1)
    assert (c.num_ucc_classes, c.bags_per_batch, c.use_rcc) == (3, 9, True)
    assert Config(cluster_methods=" kmeans , spectral ").cluster_method_list() == ["kmeans", "spectral"]


def test_command_line_values_keep_only_the_named_keys(tmp_path) -> None:
    import argparse

    from ucc_tune.config.flags import add_config_arguments, config_values

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    path = tmp_path / "c.json"
    path.write_text('{"alpha": 0.25, "epochs": 4}')
    args = parser.parse_args(["--config", str(path), "--set", "epochs=10", "--set", "amp=yes"])
    # epochs=10 is the default, and still named: a search must fix it over a space's constant
    assert config_values(args) == {"alpha": 0.25, "epochs": 10, "amp": True}


def test_datasets_bring_their_own_defaults_unless_named_or_searched() -> None:
    from ucc_tune.config.flags import defaults_from_dataset

    assert defaults_from_dataset({"dataset": "mnist_sample"}) == {"lr": 1e-4}  # the paper's, at 28x28
    assert defaults_from_dataset({"dataset": "cifar10", "lr": 3e-3}) == {}  # the user's value stays
    assert defaults_from_dataset({"dataset": "mnist"}, searched={"lr"}) == {}  # the space's stays
    assert defaults_from_dataset({}) == {} and defaults_from_dataset({"dataset": "digits"}) == {}
