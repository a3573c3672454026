#!/usr/bin/env python3
"""Checks every example pipeline against config/schema/rill-pipeline.schema.json
with a JSON Schema validator, independently of rill's own loader, which editors
do not run. Known mistakes must be refused too, so that a schema which accepts
anything fails here.

    tests/schema/validate_examples.py [SOURCE_DIR]
"""

import copy
import json
import sys
from pathlib import Path

import jsonschema
import yaml

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
schema = json.loads((root / "config/schema/rill-pipeline.schema.json").read_text())
validator_class = jsonschema.validators.validator_for(schema)
validator_class.check_schema(schema)
validator = validator_class(schema)

examples = sorted((root / "config/pipelines").glob("*.yaml"))
failed = False
if not examples:
    print("no example pipelines under config/pipelines")
    failed = True
for path in examples:
    errors = sorted(validator.iter_errors(yaml.safe_load(path.read_text())), key=str)
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "(the document)"
        print(f"{path.relative_to(root)}: {where}: {error.message}")
    failed |= bool(errors)
    print(f"{path.relative_to(root)}: {'refused' if errors else 'ok'}")

# Mistakes made on a valid example: each must be refused.
base = yaml.safe_load((root / "config/pipelines/word-count.yaml").read_text())
def mistake(change):
    document = copy.deepcopy(base)
    change(document)
    return document
mistakes = {
    "a misspelt operator": mistake(lambda d: d["flows"][0]["steps"].insert(0, {"filtr": "true"})),
    "an unknown top-level section": mistake(lambda d: d.update(sinks={})),
    "a source without a topic": mistake(lambda d: d["sources"]["lines"].pop("topic")),
    "flows that are not a list": mistake(lambda d: d.update(flows={"from": "lines"})),
    "a value format that does not exist": mistake(
        lambda d: d["sources"]["lines"].update(value_format="xml")),
}
for what, document in mistakes.items():
    if validator.is_valid(document):
        print(f"the schema accepts {what}")
        failed = True
    else:
        print(f"refused as it should be: {what}")

sys.exit(1 if failed else 0)
