"""Checks events read from a running app against the itemSchema its OpenAPI document gives.

Usage: check_events.py DOCUMENT.json EVENTS.json

EVENTS.json is a list of {"path", "method", "item"}, where item is an event as a client parses
it ({"event", "data", "id"?, "retry"?}). Each item must validate against its route's
`itemSchema` (JSON Schema 2020-12, `$ref`s resolved in the document); where the schema has one
branch per event type, exactly one branch names the item's event type, and when that branch
gives the data a `contentSchema` (JSON), the data parses as JSON and validates against it.
Prints one line per event and exits non-zero on the first that does not conform.
"""

import json
import sys

import jsonschema


def pointer(*parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(document, ref):
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def validate(document, ref, instance):
    """Errors of `instance` against the schema at `ref`, with the whole document as the root
    resource (so that `#/components/schemas/...` resolves)."""
    schema = dict(document)
    schema["$ref"] = ref
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(instance)]


def main(document_path, events_path):
    with open(document_path) as f:
        document = json.load(f)
    with open(events_path) as f:
        events = json.load(f)
    if not events:
        sys.exit("no events to check")
    for event in events:
        item = event["item"]
        where = f"{event['method'].upper()} {event['path']} {json.dumps(item)}"
        ref = pointer("paths", event["path"], event["method"], "responses", "200", "content",
                      "text/event-stream", "itemSchema")
        errors = validate(document, ref, item)
        item_schema = resolve(document, ref)
        branches = item_schema.get("oneOf")
        if branches is not None:
            name = item.get("event", "message")
            matching = [i for i, b in enumerate(branches)
                        if b["properties"]["event"]["const"] == name]
            if len(matching) != 1:
                errors.append(f"{len(matching)} branches name the event type {name!r}")
            else:
                data_ref = f"{ref}/oneOf/{matching[0]}/properties/data"
                data_schema = resolve(document, data_ref)
                if "contentSchema" in data_schema:
                    try:
                        data = json.loads(item["data"])
                    except ValueError as error:
                        errors.append(f"data is not JSON: {error}")
                    else:
                        errors += validate(document, data_ref + "/contentSchema", data)
        if errors:
            sys.exit(f"{where}: does not conform: {errors}")
        print(f"{where}: conforms")


if __name__ == "__main__":
    main(*sys.argv[1:])
