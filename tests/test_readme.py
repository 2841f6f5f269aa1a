"""docs/CONFIGURATION.md documents every key of pipeline_parameters.json with its current default."""

from __future__ import annotations

import dataclasses
import json
import re

from genrekit.core.config import SECTIONS, Config, to_jsonable
from tests.helpers import REPO_ROOT


def documented_defaults() -> dict[str, dict]:
    """``{section: {key: default}}`` from the configuration tables of docs/CONFIGURATION.md."""
    text = (REPO_ROOT / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    part = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, dict] = {}
    section = None
    for line in part.splitlines():
        heading = re.match(r"### `([\w.]+)`", line)
        if heading:  # `training.augmentation`: a section inside a section
            name, *inner = heading.group(1).split(".")
            section = tables.setdefault(name, {})
            for key in inner:
                section = section.setdefault(key, {})
            continue
        row = re.match(r"\| `(\w+)` \| `(.+?)` \|", line)
        if row and section is not None:
            section[row.group(1)] = json.loads(row.group(2))
    return tables


def test_configuration_doc_lists_every_config_key_with_its_default():
    cfg = Config()  # every field, also those to_jsonable leaves out at their defaults
    defaults = {
        name: {f.name: to_jsonable(getattr(getattr(cfg, name), f.name)) for f in dataclasses.fields(getattr(cfg, name))}
        for name in SECTIONS
    }
    documented = documented_defaults()
    assert sorted(documented) == sorted(SECTIONS)
    for name in SECTIONS:
        assert documented[name] == defaults[name], f"docs/CONFIGURATION.md section `{name}` is out of date"
