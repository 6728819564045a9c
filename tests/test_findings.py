"""ired.findings on synthetic summary tables: the best variant, the seed-spread rule, honest negatives, the
README block check, and the command line."""

from __future__ import annotations

import argparse
import math

import pandas as pd
import pytest

from ired.errors import IredError
from ired.findings import (
    BEGIN,
    END,
    add_findings_command,
    check_readme,
    exceeds_seed_spread,
    findings_markdown,
    update_readme,
    welch_t,
    write_findings,
)
from ired.landscape import sweep_column


def summary_row(exp: str, val: tuple[float, float], harder: tuple[float, float], n: int = 3, steps: int = 2000,
                **extra) -> dict:
    row = {
        "experiment": exp, "description": f"{exp} synthetic.", "status": "stable", "steps": steps, "n_seeds": n,
        "val_task_mse_mean": val[0], "val_task_mse_std": val[1], "val_task_mse_n": n,
        "val_harder_task_mse_mean": harder[0], "val_harder_task_mse_std": harder[1], "val_harder_task_mse_n": n,
        "val_predict_zero_mse": 0.16, "val_predict_mean_mse": 0.08,
        "val_harder_predict_zero_mse": 2.0, "val_harder_predict_mean_mse": 1.7,
    }
    return {**row, **extra}


def write(tmp_path, rows) -> str:
    path = tmp_path / "summary.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_seed_spread_rule_and_welch():
    assert exceeds_seed_spread(0.010, 0.001, 0.013, 0.001) is True   # |diff| 0.003 > 0.002
    assert exceeds_seed_spread(0.010, 0.002, 0.013, 0.002) is False  # 0.003 <= 0.004
    assert exceeds_seed_spread(0.010, math.nan, 0.013, 0.001) is None  # one seed: undecided
    t, df = welch_t(1.0, 1.0, 3, 0.0, 1.0, 3)
    assert t == pytest.approx(1.0 / math.sqrt(2 / 3)) and df == pytest.approx(4.0)
    assert all(math.isnan(v) for v in welch_t(1.0, 1.0, 1, 0.0, 1.0, 3))


def test_best_variant_beyond_the_spread():
    summary = pd.DataFrame([
        summary_row("q207", (0.0140, 0.0005), (1.21, 0.01)),
        summary_row("good", (0.0120, 0.0004), (1.20, 0.02)),   # better on val beyond the spread, not on harder
        summary_row("bad", (0.0280, 0.0010), (1.40, 0.01)),    # worse on both
        summary_row("q209", (0.0040, 0.0008), (0.99, 0.03), steps=6000),  # other budget: left out
    ])
    text = findings_markdown(summary, "q207")
    assert "left out (other budgets): q209 (6000 steps)" in text
    assert "- **val**: best is `good`, val_task_mse 0.012 ± 0.0004 (3 seeds), -0.002 (-14.3%) below q207's" in text
    assert "beyond the seed spread (|diff| 0.002 > 0.0009" in text
    assert "- **val_harder**: best is `good`" in text and "within the seed spread (|diff| 0.01 <= 0.03" in text
    assert "better on val: good; worse on val: bad; better on val_harder: none; worse on val_harder: bad" in text
    assert "**Verdict**: `good` beats q207 beyond the seed spread on val." in text
    assert "92% below predict zero (0.16) and 85% below predict the mean (0.08)" in text
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert [line.split(" | ")[0] for line in table] == ["| `q207`", "| `good`", "| `bad`"]


def test_honest_negative_and_one_seed_undecided():
    summary = pd.DataFrame([
        summary_row("q207", (0.0140, 0.0008), (1.21, 0.01)),
        summary_row("close", (0.0137, 0.0006), (1.215, 0.012)),
        summary_row("single", (0.0100, math.nan), (1.0, math.nan), n=1),
    ])
    text = findings_markdown(summary, "q207")
    assert "**Verdict**: No variant beats q207 beyond the seed spread, on val or on val_harder." in text
    assert "undecided (one seed): single" in text
    assert "- **val**: best is `single`" in text and "undecided: one seed" in text


def test_landscape_line_uses_the_summary_column_names():
    cols = {f"{sweep_column('val', m, k)}_{s}": v for m, k, v in
            (("task_mse", 1, 0.015), ("task_mse", 20, 0.014), ("rejected_frac", 5, 0.2),
             ("energy_monotone_frac", 5, 0.98)) for s, v in (("mean", v), ("std", v / 10))}
    summary = pd.DataFrame([summary_row("q207", (0.014, 0.001), (1.2, 0.01), **cols),
                            summary_row("x", (0.0139, 0.001), (1.2, 0.01), **cols)])
    text = findings_markdown(summary, "q207")
    assert "val_task_mse@K=1 0.015 ± 0.0015, val_task_mse@K=20 0.014 ± 0.0014" in text
    assert "| val_rejected_frac@K=5 | val_energy_monotone_frac@K=5 |" in text


def test_missing_baseline_is_said(tmp_path):
    text = findings_markdown(pd.DataFrame([summary_row("q101", (0.01, 0.001), (1.2, 0.01))]), "q207")
    assert "the baseline `q207` was not run" in text


def test_readme_check_and_update(tmp_path):
    csv = write(tmp_path, [summary_row("q207", (0.014, 0.0008), (1.21, 0.01)),
                           summary_row("v", (0.013, 0.0002), (1.2, 0.01))])
    out = write_findings(csv, tmp_path / "findings.md")
    block = out.read_text()
    assert block.startswith(BEGIN) and block.rstrip().endswith(END)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n## Findings\n\n{block}\n## Next\n")
    assert check_readme(readme, csv) == []
    readme.write_text(readme.read_text().replace("**Verdict**", "**Verdikt**"))
    diff = check_readme(readme, csv)
    assert any(line.startswith("-") and "Verdikt" in line for line in diff)
    assert update_readme(readme, csv) and check_readme(readme, csv) == []
    assert readme.read_text().startswith("# title\n") and readme.read_text().endswith("## Next\n")
    (tmp_path / "plain.md").write_text("no block here\n")
    with pytest.raises(IredError, match="has no findings block"):
        check_readme(tmp_path / "plain.md", csv)


def test_cli(tmp_path, capsys):
    csv = write(tmp_path, [summary_row("q207", (0.014, 0.0008), (1.21, 0.01)),
                           summary_row("v", (0.013, 0.0002), (1.2, 0.01))])
    parser = argparse.ArgumentParser()
    add_findings_command(parser.add_subparsers(dest="command"))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\n")

    def run(*argv: str) -> int:
        args = parser.parse_args(["findings", *argv])
        return args.func(args)

    assert run(csv, "--check", str(readme)) == 1
    assert run(csv, "--update", str(readme)) == 0
    assert run(csv, "--check", str(readme)) == 0
    capsys.readouterr()
    assert run(csv) == 0 and capsys.readouterr().out.startswith(BEGIN)
