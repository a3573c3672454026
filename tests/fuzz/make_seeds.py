#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into OUT_DIR/<target>/.

The seeds come from what the repository already holds, so they follow the
formats as they change: the example pipelines (config/pipelines/*.yaml), the
examples of docs/yaml-reference.md, the bad-pipeline table of
tests/unit/bad_pipeline_test.cpp, the expressions of the reference and of
tests/unit/expression_test.cpp, and a few encodings of each serde.

    tests/fuzz/make_seeds.py build-fuzz/seeds
"""
import hashlib
import pathlib
import re
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What the fragments of the reference (a list of steps) are wrapped in.
STEPS_HEAD = ("application:\n  application.id: app\nsources:\n  in: {topic: input}\n"
              "flows:\n  - from: in\n    steps:\n")


def c_string_literal(body):
    """The value of a C++ string literal's body (the escapes the tests use)."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), body)


def bad_pipelines():
    """The YAML of each case of bad_pipeline_test.cpp's table.

    A case's text is a sum of string literals, kHead and with_steps(...); the
    table is read token by token and each case's second field evaluated.
    """
    source = (ROOT / "tests/unit/bad_pipeline_test.cpp").read_text()
    head = "".join(c_string_literal(s) for s in re.findall(
        r'"((?:[^"\\]|\\.)*)"', re.search(r"const std::string kHead =(.*?);", source, re.S)[1]))
    table = re.search(r"kCases = \{(.*)\n\};", source, re.S)[1]
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\w+|[{}(),+]', table)
    cases, depth, fields, current = [], 0, [], []
    for token in tokens:
        if token == "{":
            depth += 1
            if depth == 1:
                fields, current = [], []
                continue
        elif token == "}":
            depth -= 1
            if depth == 0:
                fields.append(current)
                cases.append(fields)
                continue
        elif token == "," and depth == 1 and current.count("(") == current.count(")"):
            fields.append(current)
            current = []
            continue
        current.append(token)

    def evaluate(expression):
        text, wrap = "", False
        for token in expression:
            if token.startswith('"'):
                text += c_string_literal(token[1:-1])
            elif token == "kHead":
                text += head
            elif token == "with_steps":
                wrap = True
        return head + "    steps:\n" + text if wrap else text

    return [evaluate(fields[1]) for fields in cases if len(fields) >= 2]


def reference_examples():
    """The YAML examples of docs/yaml-reference.md; step lists are wrapped in a flow."""
    text = (ROOT / "docs/yaml-reference.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        if block.startswith("- "):
            yield STEPS_HEAD + "".join("      " + line + "\n" for line in block.splitlines())
        else:
            yield block


def expressions(pipelines):
    reference = (ROOT / "docs/yaml-reference.md").read_text()
    section = reference[reference.index("## Expressions"):]
    yield from re.findall(r"`([^`\n]+)`", section)
    tests = (ROOT / "tests/unit/expression_test.cpp").read_text()
    for body in re.findall(r'(?:eval|compile|compile_error|condition)\(\s*"((?:[^"\\]|\\.)*)"', tests):
        yield c_string_literal(body)
    yield from re.findall(r'(?:eval|compile|compile_error|condition)\(\s*R"\((.*?)\)"', tests, re.S)
    # The scalar values of the pipelines: conditions, keys and built values.
    for pipeline in pipelines:
        for value in re.findall(r"^\s*-?\s*[\w.]+:\s+(.+)$", pipeline, re.M):
            yield value.strip().strip("'\"")


def serde_inputs():
    """One input per (serde, example bytes): byte 0 picks the serde as serde_fuzzer.cpp does."""
    be64 = lambda n: struct.pack(">q", n)
    payloads = [b"", b"user-1", struct.pack(">i", 42), be64(1700000000000), struct.pack(">d", 2.5),
                b'{"user": "u1", "amount": 12.5, "tags": ["a", null, true]}', b'"text"', b"null",
                b"user-1" + be64(1700000000000), b"user-1" + be64(1700000060000) + be64(1700000000000),
                be64(1700000000000) + b'{"count": 3}']
    serde_count = 22  # the length of serde_fuzzer.cpp's table; more selectors wrap around
    for serde in range(serde_count):
        yield bytes([serde << 1 | 1])  # null bytes
        for payload in payloads:
            yield bytes([serde << 1]) + payload


def write(directory, inputs):
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for data in inputs:
        if isinstance(data, str):
            data = data.encode()
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
        count += 1
    return count


def main():
    out = pathlib.Path(sys.argv[1])
    pipelines = [p.read_text() for p in sorted((ROOT / "config/pipelines").glob("*.yaml"))]
    pipelines += list(reference_examples()) + bad_pipelines()
    print(f"make_seeds: {write(out / 'pipeline_fuzzer', pipelines)} pipelines, "
          f"{write(out / 'expression_fuzzer', expressions(pipelines))} expressions, "
          f"{write(out / 'serde_fuzzer', serde_inputs())} serde inputs in {out}")


if __name__ == "__main__":
    main()
