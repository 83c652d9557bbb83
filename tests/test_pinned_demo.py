"""The demo's numbers are pinned: a restructuring must not change them.

``tests/data/demo_tiny_pinned.json`` is the tiny-preset ``results.json`` written by
``sklearn-brain demo`` (all subjects, all targets, 50 bootstrap draws) at the commit that
introduced this test. Any change of a number beyond float tolerance is a change of
behaviour and must be deliberate: regenerate the file with ``python
tests/test_pinned_demo.py`` and say why in the commit.
"""

import json
import math
import sys
from pathlib import Path

import pytest

from sklearn_brain.cli import main

pytestmark = pytest.mark.pinned  # rerun under a second CPU capability in CI

PINNED = Path(__file__).parent / "data" / "demo_tiny_pinned.json"
ARGS = ["demo", "--preset", "tiny", "--n-voxels", "60", "--n-boot", "50", "--no-figure",
        "--quiet"]
VOLATILE = ("elapsed_s", "version")


def _run(out):
    assert main(ARGS + ["--output", str(out)]) == 0
    res = json.loads((Path(out) / "results.json").read_text())
    for key in VOLATILE:
        res.pop(key, None)
    return res


def _compare(a, b, path="results"):
    """Yield the paths where two JSON trees differ beyond float tolerance."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            yield f"{path}: keys {sorted(set(a) ^ set(b))}"
        for key in set(a) & set(b):
            yield from _compare(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _compare(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)):
            yield f"{path}: {a!r} != {b!r}"
    elif a != b:
        yield f"{path}: {a!r} != {b!r}"


def test_compare_finds_differences():
    pinned = {"a": {"top1": 0.5, "ids": [1, 2]}, "p": "repeats averaged"}
    assert list(_compare(pinned, pinned)) == []
    assert list(_compare(pinned, {"a": {"top1": 0.5 + 1e-12, "ids": [1, 2]},
                                  "p": "repeats averaged"})) == []
    assert len(list(_compare(pinned, {"a": {"top1": 0.51, "ids": [1, 2]},
                                      "p": "repeats averaged"}))) == 1
    assert len(list(_compare(pinned, {"a": {"top1": 0.5, "ids": [1, 3]}, "p": "x"}))) == 2


def test_demo_numbers_are_pinned(tmp_path):
    pinned = json.loads(PINNED.read_text())
    diffs = list(_compare(pinned, _run(tmp_path)))
    assert not diffs, "demo numbers changed:\n" + "\n".join(diffs[:20])


if __name__ == "__main__":  # regenerate the pinned file
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        PINNED.write_text(json.dumps(_run(tmp), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)
