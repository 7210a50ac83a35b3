"""Reading ``site_config.yaml``: YAML, then the sections validated by pydantic, then the files it names.

Every problem is one :class:`GeneratorError` line naming the key, the value and what is allowed.
Checks that need the model (layer names, channel ranges) happen in :mod:`generator.model_checks`,
once the model is known.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from generator.config.files import check_paths, read_text
from generator.config.messages import config_error
from generator.config.sections import WEB_ADDRESS, Config
from generator.errors import GeneratorError


@functools.cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(Config)


def parse_config(data: object, root: Path) -> Config:
    """Build a :class:`Config` from already-parsed YAML data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise GeneratorError(f"config: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        config = _adapter().validate_python(data)
    except ValidationError as e:
        raise config_error(e) from None
    config = dataclasses.replace(config, root=root)
    check_paths(config)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate ``site_config.yaml``; every problem is one :class:`GeneratorError` line."""
    path = Path(path)
    text = read_text(path, f"config file {str(path)!r}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GeneratorError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise GeneratorError(f"config file {str(path)!r} is nested too deeply to be a site config") from None
    return parse_config(data, path.resolve().parent)


def with_site_url(config: Config, url: str) -> Config:
    """``config`` with ``site.url`` set to ``url`` where the config file leaves it empty (``build --site-url``)."""
    if config.site.url or not url:
        return config
    if not re.fullmatch(WEB_ADDRESS, url):
        raise GeneratorError(f"--site-url: got {url!r}, expected an http:// or https:// address")
    return dataclasses.replace(config, site=dataclasses.replace(config.site, url=url))
