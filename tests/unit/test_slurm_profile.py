"""profiles/slurm: the settings a cluster run depends on, and a CPU-only block that covers every GPU rule."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"


def gpu_rules() -> set[str]:
    """Rules whose ``resources: gpu`` is not the literal 0 (a number or a function of the wildcards)."""
    rules = set()
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", path.read_text(), flags=re.M):
            name = re.match(r"rule (\w+):", block)
            gpu = re.search(r"^\s+gpu=([^#\n]+?),?\s*(?:#.*)?$", block, flags=re.M)
            if name and gpu and gpu.group(1).strip() != "0":
                rules.add(name.group(1))
    return rules


def cpu_only_block() -> dict:
    """The commented ``set-resources`` block under '# CPU-only:', uncommented and parsed."""
    lines = PROFILE.read_text().splitlines()
    start = lines.index("# CPU-only:") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line[2:])
    return yaml.safe_load("\n".join(block))["set-resources"]


def test_profile_settings() -> None:
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"  # sacct hangs without slurmdbd
    assert profile["default-resources"]["gpu"] == 0
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])


def test_cpu_only_block_sets_gpu_zero_for_every_gpu_rule() -> None:
    assert {"train", "activations", "activations_shard"} <= gpu_rules()
    block = cpu_only_block()
    missing = sorted(gpu_rules() - set(block))
    assert not missing, f"add '{{rule}}: {{gpu: 0}}' under '# CPU-only:' in {PROFILE} for {missing}"
    assert all(res == {"gpu": 0} for res in block.values())
    assert set(block) <= gpu_rules(), sorted(set(block) - gpu_rules())
