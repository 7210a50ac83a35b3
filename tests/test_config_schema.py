"""The JSON Schema for editors: up to date, accepts the shipped configs, and agrees with the loader."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from generator import cli
from generator.config import load_config
from generator.config.messages import allowed
from generator.config.schema import SCHEMA_FILE, config_schema
from generator.errors import GeneratorError

from tiny import config_rules

RULES = config_rules()

REPO = Path(__file__).resolve().parent.parent


def test_the_committed_schema_is_what_the_command_prints(capsys):
    assert cli.main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((REPO / SCHEMA_FILE).read_text())
    assert printed["properties"]["exciters"]["properties"]["steps"] == {
        "type": "integer", "minimum": 0, "maximum": 100000, "description": "Optimisation steps.", "default": 40}


@pytest.mark.parametrize("config", ["site_config.yaml", "examples/vgg19-imagenet.yaml"])
def test_shipped_configs_name_the_schema_and_validate(config):
    text = (REPO / config).read_text()
    first = text.splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (REPO / config).parent.joinpath(first.split("=", 1)[1]).resolve() == REPO / SCHEMA_FILE
    jsonschema.validate(yaml.safe_load(text), config_schema())


def test_unknown_keys_and_wrong_types_are_schema_errors_too():
    schema = config_schema()
    for bad in ({"exciters": {"stepz": 3}}, {"modle": {}}, {"units": [{"layer": "c1"}]},
                {"exciters": {"negative": "yes"}}, {"browse": {"layers": {"a": 1}}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    jsonschema.validate({"browse": {"layers": "all"}, "units": [{"layer": "c1", "channel": 2}]}, schema)


def test_every_rule_is_found():
    assert len(RULES) == 58 and {"site.url", "classes.crop_size", "classes.method", "units.channel", "units.method", "attribution.methods",
                                 "exciters.grid.size", "exciters.step_size", "attribution.faithfulness.steps",
                                 "attribution.faithfulness.samples"} <= set(RULES)


def outside(rule):
    if "pattern" in rule:
        return "ftp://example.org/report/"
    if "enum" in rule:
        return "nonsense"
    if "exclusiveMinimum" in rule:
        return rule["exclusiveMinimum"]
    return rule["maximum"] + 1 if "maximum" in rule else rule["minimum"] - 1


def nested(key: str, value) -> dict:
    """``units.channel`` -> {"units": [{"layer": "c1", "channel": value}]}, other keys as nested mappings."""
    if key.startswith("units."):
        return {"units": [{"layer": "c1", "channel": 0, key.split(".")[1]: value}]}
    data = value
    for part in reversed(key.split(".")):
        data = {part: data}
    return data


@pytest.mark.parametrize("key", sorted(RULES))
def test_loader_and_schema_refuse_the_same_values(key, tmp_path):
    rule = RULES[key]
    bad = outside(rule)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(nested(key, bad)))
    with pytest.raises(GeneratorError) as error:
        load_config(tmp_path / "c.yaml")
    assert "\n" not in str(error.value) and allowed(rule).split()[-1] in str(error.value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(nested(key, bad), config_schema())
    if "pattern" in rule:
        good = "https://example.github.io/my-report/"
    elif "enum" in rule:
        good = next(v for v in rule["enum"] if v)
    else:
        good = rule.get("maximum", rule.get("exclusiveMinimum", rule.get("minimum")) + 1)
    jsonschema.validate(nested(key, good), config_schema())
