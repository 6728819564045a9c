"""The README's numbers come from commands anyone can rerun: each scale's Findings block must equal what the
generator produces from that scale's committed snapshot (docs/results/<scale>/summary.csv, one block per scale)."""

from pathlib import Path

import pytest

from ired.reporting.findings_readme import check_readme

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = sorted((ROOT / "docs/results").glob("*/summary.csv"))


def test_the_laptop_snapshot_is_checked():
    assert ROOT / "docs/results/laptop/summary.csv" in SNAPSHOTS


@pytest.mark.parametrize("summary", SNAPSHOTS, ids=[p.parent.name for p in SNAPSHOTS])
def test_readme_findings_match_each_snapshot(summary):
    problems = check_readme(ROOT / "README.md", summary)
    assert problems == [], "\n".join(problems)
