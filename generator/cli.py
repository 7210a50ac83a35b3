"""Command line: ``python -m generator build | layers | clean | schema``."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys

from generator.errors import GeneratorError

DEFAULT_CONFIG = "site_config.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="compute the analyses and write the site's pages under docs/generated")
    layers = sub.add_parser("layers", help="list the model's layers (names, types, channels)")
    sub.add_parser("clean", help="remove the generated pages and the cache")
    sub.add_parser("schema", help="print the JSON Schema of site_config.yaml (for editors)")
    for p in (build, layers):
        p.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default: {DEFAULT_CONFIG})")
    build.add_argument("--site-url", default="", help="the published site's address where the config's site.url is empty")
    build.add_argument("--executor", default="local", help="where the heavy analyses run: local (this process, "
                       "the default) or ray (a local Ray cluster, or the one at --address)")
    build.add_argument("--address", default="", help="an existing Ray cluster: host:port of its head, ray://host:port "
                       "or auto (with --executor ray)")
    build.add_argument("--workers", type=int, default=0, help="Ray workers, each loading the model once "
                       "(default: one per GPU of the cluster, else one per CPU)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    _quiet_tensorflow()
    try:
        return {"build": _build, "layers": _layers, "clean": _clean, "schema": _schema}[args.command](args)
    except GeneratorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the previous site is left as it was", file=sys.stderr)
        return 130


def _quiet_tensorflow() -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # (oneDNN stays on: it makes CPU convolutions ~3x faster)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # its Python warnings (tf.function retracing)


def _build(args) -> int:
    from generator.build import build_site
    from generator.config import load_config, with_site_url

    build_site(with_site_url(load_config(args.config), args.site_url), executor=args.executor, address=args.address,
               workers=args.workers)
    return 0


def _layers(args) -> int:
    from generator.analyses import Analyses
    from generator.build import CACHE
    from generator.cache import Cache
    from generator.config import load_config

    print(f"{'layer':<28} {'type':<20} {'output shape':<24} channels")
    for r in Analyses(load_config(args.config), Cache(CACHE)).layers:
        print(f"{r.name:<28} {r.type:<20} {r.shape_text:<24} {r.channels or ''}")
    return 0


def _schema(args) -> int:
    import json

    from generator.config.schema import config_schema

    print(json.dumps(config_schema(), indent=2))
    return 0


def _clean(args) -> int:
    from pathlib import Path

    from generator import staging
    from generator.build import CACHE, GENERATED

    with staging.locked(Path.cwd()):  # not from under a running build
        staging.remove(Path.cwd() / GENERATED)
        print(f"removed {Path.cwd() / GENERATED}")
        shutil.rmtree(Path.cwd() / CACHE, ignore_errors=True)
        print(f"removed {Path.cwd() / CACHE}")
    return 0
