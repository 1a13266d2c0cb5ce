"""The ``--set KEY=VALUE`` and ``--config FILE`` flags every command shares, turned into
``Config`` values (no torch, no Ray)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ucc_tune.catalog import dataset_defaults
from ucc_tune.config import Config, ConfigError


def parse_assignments(items: list[str]) -> dict[str, str]:
    """Turn ``["key=value", ...]`` (the CLI's ``--set``) into a dict; malformed items raise."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) and ``--config FILE``, shared by every command."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any Config field, e.g. --set alpha=0.5 --set dataset=mnist (repeatable)",
    )
    parser.add_argument("--config", type=Path, help="a JSON file of Config fields; --set overrides it")


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values that ``--config FILE`` and then ``--set`` name (``--set`` wins), coerced to
    their field types and checked to make a valid Config; raises ``ConfigError`` on bad input.
    Only the named keys are returned: a search fixes these and leaves the rest to its space."""
    values: dict[str, Any] = {}
    if args.config is not None:
        if not args.config.is_file():
            raise ConfigError(f"--config {args.config}: no such file")
        try:
            text = args.config.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"--config {args.config}: not a readable UTF-8 JSON file ({err})") from None
        named = Config.from_json(text)
        values.update({k: getattr(named, k) for k in json.loads(text)})
    values.update(parse_assignments(args.set))
    config = Config.from_dict(values)
    return {k: getattr(config, k) for k in values}


def defaults_from_dataset(
    values: dict[str, Any], searched: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The defaults of the dataset ``values`` name (``catalog.CATALOG``) for the fields neither
    named in ``values`` nor ``searched`` by a space, e.g. ``lr=1e-4`` at 28x28."""
    return dataset_defaults(str(values.get("dataset", Config.dataset)), set(values) | set(searched))


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config of ``--config FILE`` < ``--set`` pairs; raises ``ConfigError`` on bad input."""
    return Config.from_dict(config_values(args))
