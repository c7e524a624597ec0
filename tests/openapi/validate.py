"""Validates OpenAPI documents against the official OpenAPI 3.2 JSON Schema.

Usage: validate.py DOCUMENT.json...

Two checks per document, each of which must pass:
1. The OpenAPI Initiative's published schema (https://spec.openapis.org/oas/3.2/schema/...,
   as shipped by the openapi-spec-validator package), with a JSON Schema 2020-12 validator
   (the jsonschema package), reporting every error.
2. openapi-spec-validator's OpenAPI 3.2 validation, which also checks the Schema Objects
   (against the OAS 3.2 dialect).
3. Every local `$ref` (`#/components/...`) points at something in the document.

A document with no `info` must be refused by both, or the check itself is broken.
Prints one line per document and exits non-zero on the first failure.
"""

import json
import sys
from importlib import metadata, resources

import jsonschema
from openapi_spec_validator import OpenAPIV32SpecValidator

OFFICIAL_ID_PREFIX = "https://spec.openapis.org/oas/3.2/schema/"


def official_schema():
    path = resources.files("openapi_spec_validator") / "resources/schemas/v3.2/schema.json"
    schema = json.loads(path.read_text())
    if not schema.get("$id", "").startswith(OFFICIAL_ID_PREFIX):
        sys.exit(f"not the official OpenAPI 3.2 schema: $id {schema.get('$id')!r}")
    return schema


def dangling_refs(node, document, at="#"):
    """The local `$ref`s of `node` that point at nothing in `document`."""
    found = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target = document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                else:
                    found.append(f"{at}: {ref}")
                    break
        for key, value in node.items():
            found += dangling_refs(value, document, f"{at}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += dangling_refs(value, document, f"{at}/{i}")
    return found


def errors(validator, document):
    return sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))


def main(paths):
    schema = official_schema()
    validator = jsonschema.Draft202012Validator(schema)
    print(f"official schema {schema['$id']}; jsonschema {metadata.version('jsonschema')}; "
          f"openapi-spec-validator {metadata.version('openapi-spec-validator')}")

    broken = {"openapi": "3.2.0", "paths": {}}
    if not errors(validator, broken) or not list(OpenAPIV32SpecValidator(broken).iter_errors()):
        sys.exit("the validators accept a document without `info`: the check is broken")

    for path in paths:
        with open(path) as f:
            document = json.load(f)
        if document.get("openapi") != "3.2.0":
            sys.exit(f"{path}: openapi is {document.get('openapi')!r}, not 3.2.0")
        found = errors(validator, document)
        for error in found:
            where = "/".join(str(p) for p in error.absolute_path)
            print(f"{path}: official schema: at /{where}: {error.message}")
        spec_errors = list(OpenAPIV32SpecValidator(document).iter_errors())
        for error in spec_errors:
            print(f"{path}: openapi-spec-validator: {error}")
        dangling = dangling_refs(document, document)
        for ref in dangling:
            print(f"{path}: $ref to nothing at {ref}")
        if found or spec_errors or dangling:
            sys.exit(f"{path}: INVALID ({len(found) + len(spec_errors) + len(dangling)} errors)")
        print(f"{path}: valid OpenAPI 3.2 ({len(document.get('paths', {}))} paths)")


if __name__ == "__main__":
    main(sys.argv[1:])
