"""The README's numbers come from commands anyone can rerun: its Findings block must equal what the generator
produces from the committed snapshot of the laptop run (docs/results/laptop/summary.csv)."""

from pathlib import Path

from ired.findings import check_readme

ROOT = Path(__file__).resolve().parents[1]


def test_readme_findings_match_the_laptop_snapshot():
    problems = check_readme(ROOT / "README.md", ROOT / "docs/results/laptop/summary.csv")
    assert problems == [], "\n".join(problems)
