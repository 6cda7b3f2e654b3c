"""Helpers shared by the per-stage CLI modules: argument types, the stage parser, the stats printer."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def report(stats: dict) -> None:
    """Print a stage's stats as one JSON line on stdout."""
    print(json.dumps(stats, sort_keys=True))


def add_stage(sub, name: str, func: Callable, help_: str, run: bool = True) -> argparse.ArgumentParser:
    """Register subcommand `name`; with `run`, its first positional is the run directory."""
    p = sub.add_parser(name, help=help_, description=help_)
    if run:
        p.add_argument("run", help="the run directory (local path or fsspec URL); the stage writes RUN/" + name)
    p.set_defaults(func=func)
    return p
