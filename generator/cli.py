"""Command line: ``python -m generator build | serve | pdf | layers | clean | schema``."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys

from tqdm.contrib.logging import logging_redirect_tqdm

from generator import quiet
from generator.errors import GeneratorError

DEFAULT_CONFIG = "site_config.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="compute the analyses and write the site's pages under docs/generated")
    serve = sub.add_parser("serve", help="build, serve the site with live reload and rebuild when the config, "
                           "a note, an image or docs/pages changes")
    pdf = sub.add_parser("pdf", help="build, then write the lab report as one PDF (needs the pdf extra)")
    pdf.add_argument("--output", default="report.pdf", help="the PDF's path (default: report.pdf)")
    pdf.add_argument("--if-published", action="store_true", help="only if the config's site.pdf is true "
                     "(the Pages workflow: the PDF beside the site)")
    layers = sub.add_parser("layers", help="list the model's layers (names, types, channels)")
    sub.add_parser("clean", help="remove the generated pages and the cache")
    sub.add_parser("schema", help="print the JSON Schema of site_config.yaml (for editors)")
    serve.add_argument("--dev-addr", default="127.0.0.1:8000", help="where the server listens, HOST:PORT "
                       "(default: 127.0.0.1:8000)")
    for p in (build, serve, pdf, layers):
        p.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default: {DEFAULT_CONFIG})")
    for p in (build, serve, pdf):
        p.add_argument("--site-url", default="", help="the published site's address where the config's site.url is empty")
        p.add_argument("--executor", default="local", help="where the heavy analyses run: local (this process, "
                       "the default) or ray (a local Ray cluster, or the one at --address)")
        p.add_argument("--address", default="", help="an existing Ray cluster: host:port of its head, ray://host:port "
                       "or auto (with --executor ray)")
        p.add_argument("--workers", type=int, default=0, help="Ray workers, each loading the model once "
                       "(default: one per GPU of the cluster, else one per CPU)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("generator").setLevel(logging.INFO)  # the project's lines; other libraries' warnings only
    quiet.quiet_python_warnings()
    try:
        commands = {"build": _build, "serve": _serve, "pdf": _pdf, "layers": _layers, "clean": _clean,
                    "schema": _schema}
        with logging_redirect_tqdm():  # a line logged while a bar is drawn (the pages, under the figures') is its own
            return commands[args.command](args)
    except GeneratorError as e:
        _error_line(e)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the previous site is left as it was", file=sys.stderr)
        return 130


def _error_line(e: GeneratorError) -> None:
    print(f"error: {e}", file=sys.stderr)


def _build(args) -> int:
    from generator.build import build_site
    from generator.config import load_config, with_site_url

    config = with_site_url(load_config(args.config), args.site_url)
    build_site(config, executor=args.executor, address=args.address, workers=args.workers)
    return 0


def _serve(args) -> int:
    from pathlib import Path

    from generator.serve import serve

    def build_once() -> bool:
        try:
            _build(args)
            return True
        except GeneratorError as e:  # shown as its line; the last good site stays up
            _error_line(e)
            return False

    return serve(Path(args.config), args.dev_addr, build_once, Path.cwd())


def _pdf(args) -> int:
    from pathlib import Path

    from generator.build import GENERATED
    from generator.config import load_config
    from generator.pdf import engine, write_pdf
    from generator.site_paths import SitePaths

    config = load_config(args.config)
    if args.if_published and not config.site.pdf:
        print("no PDF: site.pdf is false in the config")
        return 0
    engine()  # its absence is one line before any build work
    _build(args)
    page = Path.cwd() / GENERATED / SitePaths("").report / "index.md"
    written = write_pdf(page, Path(args.output), config.site.title, config.site.author, Path(config.model.name).name)
    print(f"wrote {written}")
    return 0


def _layers(args) -> int:
    from generator.analyses import Analyses
    from generator.build import CACHE
    from generator.cache import Cache
    from generator.config import load_config

    config = load_config(args.config)
    from generator.model_checks import rescaling_note, shared_layer_notes

    layers = Analyses(config, Cache(CACHE, prepare=quiet.import_keras)).layers  # the model only where not cached
    print("\n".join(_layer_lines(layers)))
    for note in [rescaling_note(layers, config.model.preprocess), *shared_layer_notes(layers)]:
        if note:
            print(note)
    return 0


def _layer_lines(layers) -> list[str]:
    """One line a layer; a nested model's layers by their path, with their own name where no other layer has it."""
    from collections import Counter

    from generator.flat_model import SEPARATOR, own_name, path

    if not any(SEPARATOR in r.name for r in layers):
        return [f"{'layer':<28} {'type':<20} {'output shape':<24} channels",
                *(f"{r.name:<28} {r.type:<20} {r.shape_text:<24} {r.channels or ''}" for r in layers)]
    counts = Counter(own_name(r.name) for r in layers)
    lines = [f"{'layer (path)':<44} {'own name':<24} {'type':<20} {'output shape':<24} channels"]
    for r in layers:
        own = own_name(r.name) if SEPARATOR in r.name and counts[own_name(r.name)] == 1 else ""
        lines.append(f"{path(r.name):<44} {own:<24} {r.type:<20} {r.shape_text:<24} {r.channels or ''}")
    return [*lines, f"note: the config may name a layer by its path or its own name; pages and URLs write "
                    f"the path with {SEPARATOR!r} for '/'"]


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
