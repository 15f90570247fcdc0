#!/usr/bin/env python3
"""Validates recorded JSON-RPC answers against the execution-apis OpenRPC specification.

Usage: check.py SPEC TRAFFIC
  SPEC     the document scripts/fetch-execution-apis.py writes
  TRAFFIC  a JSON list of {"method", "params", "result"} (answers) or {"method", "params",
           "error"} (refusals), as the conformance test recorded them

Every answer is checked against its method's result schema, every call's parameters against
the parameter schemas. Prints a JSON report: per method how many answers were checked, and
each failure with the part of the answer that broke which rule; exits 1 if any failed.

One rule of the specification is read as it is meant rather than as written: where it says
`oneOf` for alternatives that overlap (an empty array is both "no hashes" and "no logs" in
eth_getFilterChanges), a value that fits several of them is not a failure.
"""

import json
import sys

from jsonschema import Draft7Validator


def ambiguous(error):
    """A `oneOf` the value fits more than one branch of: the specification's overlap."""
    return error.validator == "oneOf" and "is valid under each of" in error.message


def validator(schema, components):
    root = dict(schema)
    root["components"] = components
    return Draft7Validator(root)


def main():
    spec = json.load(open(sys.argv[1]))
    traffic = json.load(open(sys.argv[2]))
    components = spec["components"]
    methods = {m["name"]: m for m in spec["methods"]}
    checked, failures = {}, []
    for call in traffic:
        method = methods.get(call["method"])
        if method is None:
            continue
        checked.setdefault(call["method"], 0)
        for param, value in zip(method.get("params", []), call["params"]):
            for error in validator(param["schema"], components).iter_errors(value):
                if ambiguous(error):
                    continue
                failures.append({
                    "method": call["method"], "param": param["name"],
                    "at": list(error.absolute_path), "rule": error.message[:300],
                })
        if "result" not in call:
            continue
        checked[call["method"]] += 1
        for error in validator(method["result"]["schema"], components).iter_errors(call["result"]):
            if ambiguous(error):
                continue
            failures.append({
                "method": call["method"], "at": list(error.absolute_path),
                "rule": error.message[:300],
            })
    print(json.dumps({"checked": checked, "failures": failures}, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
