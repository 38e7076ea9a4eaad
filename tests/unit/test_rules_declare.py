"""Every rule declares a log, a benchmark file, threads, mem_mb, runtime, gpu and a code hash in its params (DESIGN
conventions): bench/RESULTS.md lists the slowest jobs from the benchmark files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "workflow" / "rules"
REQUIRED = ("log:", "benchmark:", "threads:", "mem_mb=", "runtime=", "gpu=", "code=script_hash(", "script:", "conda:")


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted(RULES.glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2], strict=False):
            blocks[name] = body.split("\n\n\n")[0]
    return blocks


BLOCKS = _rule_blocks()


@pytest.mark.parametrize("rule", sorted(BLOCKS))
def test_rule_declares_log_resources_and_code_hash(rule):
    missing = [key for key in REQUIRED if key not in BLOCKS[rule]]
    assert not missing, f"rule {rule} lacks {missing}"
    assert re.search(r"gpu=([01],|lambda|int\()", BLOCKS[rule]), f"rule {rule}: gpu must be 0 or 1"
    script = re.search(r'script:\s*"\.\./scripts/(\w+)\.py"', BLOCKS[rule])
    assert script and script.group(1) == rule, f"rule {rule}: its script must be scripts/{rule}.py"
    code = re.search(r'code=script_hash\("(\w+)"\)', BLOCKS[rule])
    assert code and code.group(1) == rule, f"rule {rule}: its code key must be script_hash('{rule}'), its own script"


def test_all_rules_were_found():
    assert {"data", "train", "activations"} <= set(BLOCKS) and len(BLOCKS) > 20
