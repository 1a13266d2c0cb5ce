"""Where experiments and runs live: a local (or shared, e.g. NFS) folder or a ``pyarrow.fs`` URI.

Ray needs storage that every node reaches once a cluster has more than one node: a shared
folder or cloud storage (``s3://bucket/path``, ``gs://...``, ``hdfs://...``; options such as a
custom endpoint go in the URI's query, ``s3://bucket/x?endpoint_override=host:9000&scheme=http``).
``Storage`` gives the rest of ``ucc_tune`` one way to write there: the trials' artifacts and, on
the driver, the copies of ``search.json``, ``optuna.db`` and ``trials.parquet``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

LOCAL_SCHEMES = ("", "file")


def is_uri(location: str | Path) -> bool:
    """True for ``scheme://...`` locations other than ``file://``."""
    text = str(location)
    return "://" in text and urlsplit(text).scheme.lower() not in LOCAL_SCHEMES


SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def is_secret(name: str) -> bool:
    """Whether an environment variable or URI option ``name`` holds a secret: its name says KEY,
    TOKEN, SECRET, PASSWORD or CREDENTIAL (any case), or it is an ``AWS_`` credential."""
    upper = name.upper()
    return upper.startswith("AWS_") or any(word in upper for word in SECRET_WORDS)


def redact_text(text: str) -> str:
    """``text`` with every URI in it passed through ``redact``: error messages quote locations."""
    return URI_IN_TEXT.sub(lambda match: redact(match.group(0)), text)


def redact(location: str) -> str:
    """``location`` fit to print or store: credentials in a URI (``s3://key:secret@bucket`` or
    ``?secret_key=...``, any option ``is_secret`` names) replaced by ``***``."""
    if not is_uri(location):
        return location
    split = urlsplit(location)
    netloc = split.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{key}=***" if is_secret(key) else f"{key}={value}" if sep else key
        for key, sep, value in (item.partition("=") for item in split.query.split("&") if item)
    )
    return urlunsplit((split.scheme, netloc, split.path, query, split.fragment))


class Storage:
    """A folder on a ``pyarrow.fs`` filesystem, named by a path or a URI.

    Raises ``ValueError`` naming the location when pyarrow cannot open it (unknown scheme,
    missing optional filesystem support, malformed options).
    """

    def __init__(self, location: str | Path):
        text = str(location)
        if is_uri(text):
            try:
                self.fs, self.root = pafs.FileSystem.from_uri(text)
            except Exception as err:  # ArrowInvalid, OSError, ...: all mean "cannot use this"
                raise ValueError(
                    f"storage {redact(text)!r} cannot be opened ({err}); use a folder or a pyarrow.fs URI "
                    "such as s3://bucket/path, gs://bucket/path or hdfs://host/path"
                ) from None
            self.uri, self.is_local = text, False
        else:
            path = Path(text.removeprefix("file://")).expanduser().resolve()
            self.fs, self.root = pafs.LocalFileSystem(), path.as_posix()
            self.uri, self.is_local = path.as_posix(), True

    def __str__(self) -> str:
        return redact(self.uri)

    def __repr__(self) -> str:
        return f"Storage({redact(self.uri)!r})"

    @property
    def local_path(self) -> Path:
        """The folder itself; only for local storage."""
        if not self.is_local:
            raise ValueError(f"{self.uri} is not a local folder")
        return Path(self.root)

    def child(self, *parts: str) -> Storage:
        """A sub-folder, keeping a URI's scheme and query (its filesystem options)."""
        if self.is_local:
            return Storage(Path(self.root, *parts))
        split = urlsplit(self.uri)
        path = "/".join([split.path.rstrip("/"), *parts])
        return Storage(urlunsplit((split.scheme, split.netloc, path, split.query, split.fragment)))

    def path(self, *parts: str) -> str:
        """The path of ``parts`` on ``self.fs``."""
        return "/".join([self.root.rstrip("/"), *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.path(*parts)) as stream:
            return bytes(stream.read())

    def write_bytes(self, data: bytes, *parts: str) -> None:
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(target) as stream:
            stream.write(data)

    def read_text(self, *parts: str) -> str:
        return self.read_bytes(*parts).decode()

    def write_text(self, text: str, *parts: str) -> None:
        self.write_bytes(text.encode(), *parts)

    def append_text(self, text: str, *parts: str) -> None:
        """Append to a text file (object stores have no append: the file is rewritten)."""
        if self.is_local:
            target = Path(self.path(*parts))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a") as handle:
                handle.write(text)
            return
        old = self.read_bytes(*parts) if self.exists(*parts) else b""
        self.write_bytes(old + text.encode(), *parts)

    def upload(self, local: Path, *parts: str) -> None:
        """Copy a local file or folder (recursively) to ``parts``; a no-op onto itself."""
        target = self.path(*parts)
        if self.is_local and Path(target).resolve() == local.resolve():
            return
        if local.is_dir():
            self.fs.create_dir(target, recursive=True)
        else:
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        local_fs = pafs.LocalFileSystem()
        pafs.copy_files(
            str(local.resolve()), target, source_filesystem=local_fs, destination_filesystem=self.fs
        )

    def download(self, local: Path, *parts: str) -> None:
        """Copy the file or folder ``parts`` to ``local``."""
        local.parent.mkdir(parents=True, exist_ok=True)
        local_fs = pafs.LocalFileSystem()
        source = self.path(*parts)
        target = str(local.resolve())
        pafs.copy_files(source, target, source_filesystem=self.fs, destination_filesystem=local_fs)

    def download_tree(self, local: Path, skip: Callable[[str], bool] | None = None) -> Path:
        """Copy every file under this folder to ``local``, except those whose relative path
        ``skip`` returns True for; returns ``local``."""
        found = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True))
        prefix = self.root.rstrip("/") + "/"
        for info in found:
            relative = info.path[len(prefix) :] if info.path.startswith(prefix) else info.path
            if info.type != pafs.FileType.File or (skip is not None and skip(relative)):
                continue
            target = local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.fs.open_input_stream(info.path) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return local

    @contextlib.contextmanager
    def staged(self, *parts: str) -> Iterator[Path]:
        """A local folder to write into that ends up at ``parts``: the folder itself when local,
        else a temporary folder uploaded on exit."""
        if self.is_local:
            folder = Path(self.path(*parts))
            folder.mkdir(parents=True, exist_ok=True)
            yield folder
            return
        with tempfile.TemporaryDirectory(prefix="ucc-stage-") as tmp:
            yield Path(tmp)
            self.upload(Path(tmp), *parts)


def local_mirror(location: Storage, cache: Path | None = None) -> Path:
    """The driver's local folder for a remote experiment (``optuna.db`` needs a local file):
    ``~/.cache/ucc-tune/remote/<hash of the URI>/<last part of its path>``."""
    if location.is_local:
        return location.local_path
    digest = hashlib.sha256(location.uri.encode()).hexdigest()[:12]
    name = location.root.rstrip("/").rsplit("/", 1)[-1]
    base = cache if cache is not None else Path("~/.cache/ucc-tune/remote").expanduser()
    return base / digest / name
