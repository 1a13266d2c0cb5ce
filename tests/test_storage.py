"""Experiment storage: local folders and pyarrow.fs URIs, checked on a real S3 protocol server
(moto, on 127.0.0.1) and, end to end, a search whose ``--storage-path`` is ``s3://``."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pyarrow.fs as pafs
import pytest

from ucc_tune.provenance import redact_argument
from ucc_tune.storage import Storage, is_uri, local_mirror, redact


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """``host:port`` of a moto S3 server in this process (a thread), stopped afterwards."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


def bucket_uri(endpoint: str, path: str = "exps") -> str:
    """A fresh bucket on the server; credentials and endpoint travel in the URI, so that Ray's
    worker processes (started before this test) can open it too."""
    bucket = f"b{uuid.uuid4().hex[:12]}"
    fs = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir(bucket)
    return f"s3://test:test@{bucket}/{path}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return Storage(tmp_path / "store")
    return Storage(bucket_uri(request.getfixturevalue("s3_endpoint")))


def test_is_uri_and_local_forms(tmp_path: Path) -> None:
    assert is_uri("s3://bucket/x") and is_uri("gs://b") and not is_uri("/data/x") and not is_uri("file:///x")
    assert Storage(f"file://{tmp_path}").is_local and Storage(f"file://{tmp_path}").local_path == tmp_path
    assert Storage("relative/dir").local_path == Path("relative/dir").resolve()


def test_an_unusable_uri_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"'nosuch://place/x' cannot be opened.*s3://bucket/path"):
        Storage("nosuch://place/x")


def test_write_read_append_and_exists(storage: Storage) -> None:
    run = storage.child("exp", "run")
    assert not run.exists("a", "b.txt")
    run.write_bytes(b"hello", "a", "b.txt")
    assert run.exists("a", "b.txt") and run.read_bytes("a", "b.txt") == b"hello"
    assert storage.read_bytes("exp", "run", "a", "b.txt") == b"hello"  # child() is the same place
    run.append_text("1\n", "metrics.jsonl")
    run.append_text("2\n", "metrics.jsonl")
    assert run.read_bytes("metrics.jsonl") == b"1\n2\n"


def test_upload_download_staged_and_tree(storage: Storage, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "folder").mkdir(parents=True)
    (src / "folder" / "x.txt").write_text("x")
    (src / "one.txt").write_text("one")
    exp = storage.child("exp")
    exp.upload(src / "folder", "up")
    exp.upload(src / "one.txt", "one.txt")
    with exp.staged("trial_1", "artifacts") as folder:
        (folder / "js.npz").write_bytes(b"npz")
        (folder / "sub").mkdir()
        (folder / "sub" / "deep.txt").write_text("deep")
    exp.write_bytes(b"state", "trial_1", "checkpoint_000000", "state.pt")
    exp.download(tmp_path / "back.txt", "one.txt")
    assert (tmp_path / "back.txt").read_text() == "one"
    tree = exp.download_tree(tmp_path / "tree", skip=lambda rel: "checkpoint_" in rel)
    found = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert found == ["one.txt", "trial_1/artifacts/js.npz", "trial_1/artifacts/sub/deep.txt", "up/x.txt"]
    assert (tree / "trial_1" / "artifacts" / "sub" / "deep.txt").read_text() == "deep"


def test_credentials_never_reach_what_is_printed_or_stored() -> None:
    uri = "s3://KEY:SECRET@bucket/x?endpoint_override=h:1&secret_key=S2&scheme=http"
    shown = redact(uri)
    assert "SECRET" not in shown and "KEY" not in shown and "S2" not in shown
    assert shown == "s3://***@bucket/x?endpoint_override=h:1&secret_key=***&scheme=http"
    assert redact("/plain/folder") == "/plain/folder"
    assert "SECRET" not in redact_argument(f"--storage-path={uri}")
    valid = "s3://KEY:SECRET@bucket/x?endpoint_override=h:1&scheme=http"
    assert "SECRET" not in str(Storage(valid)) and "SECRET" not in repr(Storage(valid))
    with pytest.raises(ValueError) as refused:  # pyarrow knows no secret_key option
        Storage(uri)
    assert "SECRET" not in str(refused.value) and "S2" not in str(refused.value)


def test_local_mirror_is_per_uri_and_keeps_the_name(tmp_path: Path) -> None:
    a, b = Storage("s3://bucket/a/exp1?region=us-east-1"), Storage("s3://other/a/exp1?region=us-east-1")
    assert local_mirror(a, tmp_path).name == "exp1" and local_mirror(a, tmp_path) != local_mirror(b, tmp_path)
    assert local_mirror(Storage(tmp_path / "exp")) == tmp_path / "exp"


def test_search_on_s3_storage_end_to_end(
    ray_cluster: None,
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Trials, artifacts, search.json, optuna.db and trials.parquet all land in the bucket; the
    experiment restores from the URI alone (empty local cache) and analysis reads it."""
    from analysis.load import load
    from ucc_tune.search import command as search

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the driver's local copy goes here
    root = bucket_uri(s3_endpoint)
    args = ["--storage-path", root, "--name", "s3exp", "--set", "num_threads=1"]
    small = ["--space", "smoke", "--num-samples", "3", "--max-concurrent", "1", "--scheduler", "fifo"]
    assert search.main([*args, *small]) == 0
    out = capsys.readouterr().out
    assert "test:test" not in out and "python -m analysis s3://***@" in out
    exp = Storage(root).child("s3exp")
    for name in ("search.json", "optuna.db", "trials.parquet"):
        assert exp.exists(name), name
    assert "test:test" not in exp.read_bytes("search.json").decode()
    copy = tmp_path / "copy"
    exp.download_tree(copy, skip=lambda rel: "checkpoint_" in rel)
    trials = pd.read_parquet(copy / "trials.parquet")
    assert len(trials) == 3 and (trials["status"] == "TERMINATED").all()
    trial_dirs = [p for p in copy.iterdir() if (p / "result.json").is_file()]
    assert len(trial_dirs) == 3
    for trial_dir in trial_dirs:  # written by the trial process straight into the bucket
        assert (trial_dir / "artifacts" / "js.npz").is_file()
    stored = optuna.load_study(study_name="s3exp", storage=f"sqlite:///{copy / 'optuna.db'}")
    assert [t.state.name for t in stored.trials] == ["COMPLETE"] * 3
    assert json.loads((copy / "search.json").read_text())["searched"] == ["alpha", "lr"]

    # resume from the bucket alone: a new machine (empty cache) finds the study and the trials
    monkeypatch.setenv("HOME", str(tmp_path / "other-home"))
    assert search.main([*args, *small, "--resume"]) == 0
    again = pd.read_parquet(Storage(root).child("s3exp").download_tree(tmp_path / "again") / "trials.parquet")
    assert sorted(again["trial_id"]) == sorted(trials["trial_id"])

    loaded = load(exp.uri)
    assert len(loaded.trials) == 3 and len(loaded.js) > 0
    assert loaded.paths[0].is_relative_to(tmp_path / "other-home")


def test_ray_gets_the_uri_with_its_credentials_and_the_user_sees_them_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import ucc_tune.ray_adapter as tune
    from ucc_tune.search import command as search

    asked: list[str] = []

    def exists(location: str) -> bool:
        asked.append(location)
        return True  # without --resume the command stops here, before Ray starts

    monkeypatch.setattr(tune, "experiment_exists", exists)
    uri = "s3://KEY:SECRET@bucket/exps?region=us-east-1"
    assert search.main(["--storage-path", uri, "--name", "old", "--space", "smoke"]) == 2
    assert asked == ["s3://KEY:SECRET@bucket/exps/old?region=us-east-1"]
    err = capsys.readouterr().err
    assert "s3://***@bucket/exps/old?region=us-east-1 exists; pass --resume" in err and "SECRET" not in err
