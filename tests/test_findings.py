"""ired.reporting.findings, comparisons, findings_readme and stats: the t distribution against published values,
Welch's test and Holm's correction (family-wise error rate by simulation, power on a true effect), the best
variant, honest negatives, the seed-set check, the README block check, and the command line."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import pytest

from ired.core.errors import IredError
from ired.reporting.comparisons import compare_family
from ired.reporting.findings import findings_markdown
from ired.reporting.findings_readme import (
    add_findings_command,
    check_readme,
    markers,
    scale_of,
    update_readme,
    write_findings,
)
from ired.reporting.inference_sweep import sweep_column
from ired.reporting.stats import holm, t_quantile, t_two_sided_p, welch_test


def summary_row(exp: str, val: tuple[float, float], harder: tuple[float, float], n: int = 3, steps: int = 2000,
                **extra) -> dict:
    row = {
        "experiment": exp, "description": f"{exp} synthetic.", "status": "stable", "steps": steps, "n_seeds": n,
        "seeds": " ".join(str(i) for i in range(n)),
        "val_task_mse_mean": val[0], "val_task_mse_std": val[1], "val_task_mse_n": n,
        "val_harder_task_mse_mean": harder[0], "val_harder_task_mse_std": harder[1], "val_harder_task_mse_n": n,
        "val_predict_zero_mse": 0.16, "val_predict_mean_mse": 0.08,
        "val_harder_predict_zero_mse": 2.0, "val_harder_predict_mean_mse": 1.7,
    }
    return {**row, **extra}


def write(tmp_path, rows, scale: str = "laptop") -> str:
    """A summary table where the pipeline puts one: <folder>/<scale>/summary.csv."""
    path = tmp_path / scale / "summary.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_t_distribution_matches_published_values():
    # two-sided 5% and 1% critical values of Student's t (any statistics table)
    for df, t05 in ((1, 12.706205), (2, 4.302653), (4, 2.776445), (10, 2.228139), (30, 2.042272)):
        assert t_two_sided_p(t05, df) == pytest.approx(0.05, abs=1e-6)
        assert t_quantile(0.975, df) == pytest.approx(t05, abs=1e-5)
    assert t_quantile(0.995, 3) == pytest.approx(5.840909, abs=1e-5)
    assert t_quantile(0.025, 4) == pytest.approx(-2.776445, abs=1e-5)
    # closed forms: df=1 is Cauchy, df=2 has P(|T|>t) = 1 - t/sqrt(2+t^2)
    assert t_two_sided_p(1.0, 1) == pytest.approx(0.5, abs=1e-12)
    for t in (0.3, 1.7, 9.0):
        assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    # non-integer df (Welch) lies between its integer neighbours
    assert t_two_sided_p(2.5, 3) > t_two_sided_p(2.5, 3.4) > t_two_sided_p(2.5, 4)
    assert t_two_sided_p(0.0, 5) == pytest.approx(1.0) and t_two_sided_p(math.inf, 5) == 0.0


def test_welch_test_and_holm():
    w = welch_test(1.0, 1.0, 3, 0.0, 1.0, 3)
    assert w.t == pytest.approx(1.0 / math.sqrt(2 / 3)) and w.df == pytest.approx(4.0)
    assert w.p == pytest.approx(0.287864, abs=1e-6)
    half = 2.776445 * math.sqrt(2 / 3)
    assert (w.ci_low, w.ci_high) == (pytest.approx(1 - half, abs=1e-5), pytest.approx(1 + half, abs=1e-5))
    one_seed = welch_test(1.0, math.nan, 1, 0.0, 1.0, 3)
    assert one_seed.diff == 1.0 and all(math.isnan(v) for v in (one_seed.t, one_seed.p, one_seed.ci_low))
    assert math.isnan(welch_test(1.0, 0.0, 3, 0.0, 0.0, 3).p)  # no variance at all: no test
    assert holm([0.01, 0.04, 0.03, 0.005, math.nan])[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(holm([0.01, math.nan])[1]) and holm([0.01, math.nan])[0] == 0.01  # m counts finite p only
    assert holm([0.02, 0.9]) == pytest.approx([0.04, 0.9]) and holm([]) == []


def _simulate(rng, families: int, k: int, effect: float, n: int) -> tuple[float, float]:
    """Families of k experiments x 2 splits against one baseline (n seeds each, unit noise); experiment 0 has
    a true effect of ``effect`` on both splits. Returns (share of families with a false positive, share of
    families where experiment 0 is found on some split)."""

    false_pos = found = 0
    for _ in range(families):
        rows = [summary_row("base", (0.0, 0.0), (0.0, 0.0), n=n)]
        for e in range(k):
            rows.append(summary_row(f"e{e}", (0.0, 0.0), (0.0, 0.0), n=n))
        for split in ("val", "val_harder"):
            draws = rng.normal(size=(k + 1, n))
            draws[1] -= effect
            for row, d in zip(rows, draws, strict=True):
                row[f"{split}_task_mse_mean"], row[f"{split}_task_mse_std"] = float(d.mean()), float(d.std(ddof=1))
        fam = compare_family(pd.DataFrame(rows), "base", [f"e{e}" for e in range(k)])
        sig = {(s, e) for s, comps in fam.items() for e, c in comps.items() if c.significant}
        false_pos += any(e != "e0" or effect == 0 for _, e in sig)
        found += any(e == "e0" for _, e in sig)
    return false_pos / families, found / families


def test_holm_welch_keeps_the_family_wise_error_rate_and_finds_a_true_effect():
    import numpy as np

    rng = np.random.default_rng(0)
    # no true effect anywhere: 17 experiments x 2 splits (the laptop study's family), 3 seeds each
    fwer, _ = _simulate(rng, 200, 17, effect=0.0, n=3)
    assert fwer <= 0.08, f"family-wise false-positive rate {fwer:.3f} (alpha 0.05)"
    # the old rule |mean_a - mean_b| > std_a + std_b fires far more often on the same kind of data
    draws = rng.normal(size=(4000, 2, 3))
    m, s = draws.mean(axis=2), draws.std(axis=2, ddof=1)
    old_rule = (np.abs(m[:, 0] - m[:, 1]) > s[:, 0] + s[:, 1]).mean()
    assert old_rule > 0.05
    # a true effect is found, nothing else: with 5 seeds an effect of 5 noise stds in nearly every family (with
    # 3 seeds Welch has ~4 degrees of freedom and 34 comparisons need t > ~7: only huge effects survive)
    fwer_other, power = _simulate(rng, 60, 17, effect=5.0, n=5)
    assert power >= 0.9 and fwer_other <= 0.1


def test_best_variant_significant():
    summary = pd.DataFrame([
        summary_row("q207", (0.0140, 0.0002), (1.21, 0.01)),
        summary_row("good", (0.0120, 0.0001), (1.20, 0.02)),   # significantly better on val, not on harder
        summary_row("bad", (0.0280, 0.0010), (1.40, 0.01)),    # worse on both
        summary_row("q209", (0.0040, 0.0008), (0.99, 0.03), steps=6000),  # other budget: left out
    ])
    text = findings_markdown(summary, "q207")
    assert "Holm-Bonferroni" in text and "family of all 4 comparisons (2 experiments x 2 splits)" in text
    assert "left out (other budgets): q209 (6000 steps)" in text
    assert "- **val**: best is `good`, val_task_mse (EMA) 0.012 ± 0.0001 (3 seeds), -0.002 (-14.3%; 95% CI [" in text
    w = welch_test(0.0120, 0.0001, 3, 0.0140, 0.0002, 3)
    good = compare_family(summary, "q207", ["good", "bad"])["val"]["good"]
    ps = [c.p for comps in compare_family(summary, "q207", ["good", "bad"]).values() for c in comps.values()]
    assert good.p_holm == pytest.approx(holm(ps)[0]) and good.p_holm < 0.05 and good.p == pytest.approx(w.p)
    assert f"significantly better (Holm-adjusted p = {good.p_holm:.2g}; Welch t = {w.t:.2f}" in text
    assert "- **val_harder**: best is `good`" in text and "not significant (Holm-adjusted p = " in text
    assert "better on val: good; worse on val: bad; better on val_harder: none; worse on val_harder: bad" in text
    assert "**Verdict**: `good` beats q207 significantly on val (Holm-adjusted p = " in text
    assert "92% below predict zero (0.16) and 85% below predict the mean (0.08)" in text
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert [line.split(" | ")[0] for line in table] == ["| `q207`", "| `good`", "| `bad`"]
    assert "| p (Holm) | verdict |" in text and "seed spread" not in text


def test_when_every_variant_is_above_the_baseline_the_closest_is_not_called_best():
    summary = pd.DataFrame([
        summary_row("q207", (0.00979, 0.000003), (0.2153, 0.00005)),
        summary_row("q101", (0.00983, 0.000006), (0.2156, 0.0001)),  # above q207 on both splits
        summary_row("q208", (0.00992, 0.000011), (0.2123, 0.0004)),  # above on val, below on val_harder
    ])
    text = findings_markdown(summary, "q207")
    assert "- **val**: no compared experiment is below q207; the closest is `q101`, val_task_mse (EMA) " in text
    assert "- **val**: best is" not in text
    assert "- **val_harder**: best is `q208`" in text


def test_honest_negative_one_seed_and_other_seeds():
    summary = pd.DataFrame([
        summary_row("q207", (0.0140, 0.0008), (1.21, 0.01)),
        summary_row("close", (0.0137, 0.0006), (1.215, 0.012)),
        summary_row("added", (0.0100, 0.0001), (1.0, 0.001), n=4),  # a seed added after the others: not compared
    ])
    text = findings_markdown(summary, "q207")
    assert "**Verdict**: No variant beats q207 significantly (Holm-adjusted p < 0.05 over 2 comparisons)" in text
    assert "left out (other seeds, not comparable): added (seeds 0 1 2 3)" in text
    assert "`added`" not in text.split("left out")[1].split("\n", 1)[1]  # in no sentence or table row
    assert "not significant (Holm-adjusted p = " in text
    one = pd.DataFrame([summary_row("q207", (0.0140, math.nan), (1.21, math.nan), n=1),
                        summary_row("single", (0.0100, math.nan), (1.0, math.nan), n=1)])
    text = findings_markdown(one, "q207")
    assert "undecided (one seed): single" in text and "undecided: one seed" in text


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
    begin, end = markers("laptop")
    assert block.startswith(begin) and block.rstrip().endswith(end)
    assert "from `results/laptop/summary.csv`, the laptop scale (every task MSE below is of the EMA weights" in block
    assert "`ired findings docs/results/laptop/summary.csv --check README.md`" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n## Findings\n\n{block}\n## Next\n")
    assert check_readme(readme, csv) == []
    readme.write_text(readme.read_text().replace("**Verdict**", "**Verdikt**"))
    diff = check_readme(readme, csv)
    assert any(line.startswith("-") and "Verdikt" in line for line in diff)
    assert update_readme(readme, csv) and check_readme(readme, csv) == []
    assert readme.read_text().startswith("# title\n") and readme.read_text().endswith("## Next\n")
    (tmp_path / "plain.md").write_text("no block here\n")
    with pytest.raises(IredError, match="has no findings block for scale 'laptop'"):
        check_readme(tmp_path / "plain.md", csv)


def test_each_scale_has_its_own_block(tmp_path):
    laptop = write(tmp_path / "results", [summary_row("q207", (0.014, 0.0008), (1.21, 0.01)),
                                          summary_row("v", (0.013, 0.0002), (1.2, 0.01))], scale="laptop")
    n20 = write(tmp_path / "results", [summary_row("q207", (0.011, 0.0005), (0.2, 0.01)),
                                       summary_row("w", (0.010, 0.0004), (0.19, 0.01))], scale="n20")
    assert scale_of(laptop) == "laptop" and scale_of(n20) == "n20"
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n## Findings (laptop scale)\n\n"
                      + write_findings(laptop, tmp_path / "l.md").read_text()
                      + "\n## Findings (n = 20)\n\n" + write_findings(n20, tmp_path / "n.md").read_text())
    assert check_readme(readme, laptop) == [] and check_readme(readme, n20) == []
    # a change in one block fails the check of that scale only
    text = readme.read_text()
    cut = text.index(markers("n20")[0])
    readme.write_text(text[:cut] + text[cut:].replace("**Verdict**", "**Verdikt**"))
    assert check_readme(readme, laptop) == []
    assert any("Verdikt" in line for line in check_readme(readme, n20))
    # --update rewrites the block of its scale and leaves the other one as it was
    assert update_readme(readme, n20) and readme.read_text() == text
    # the scale's name is the whole marker: a block of laptop2 is not laptop's
    (tmp_path / "other.md").write_text(text.replace("findings:laptop ", "findings:laptop2 "))
    with pytest.raises(IredError, match=r"^\S+other.md has no findings block for scale 'laptop' \(a line "
                                        r"'<!-- findings:laptop begin ...-->' \.\.\. "
                                        r"a line '<!-- findings:laptop end -->'\)"):
        check_readme(tmp_path / "other.md", laptop)
    # a missing block is said in one line, naming the file and the scale
    (tmp_path / "only_laptop.md").write_text(write_findings(laptop, tmp_path / "l.md").read_text())
    with pytest.raises(IredError, match="only_laptop.md has no findings block for scale 'n20'") as info:
        check_readme(tmp_path / "only_laptop.md", n20)
    assert "\n" not in str(info.value)
    # two blocks of one scale: which one is meant?
    (tmp_path / "twice.md").write_text(text + text[cut:])
    with pytest.raises(IredError, match="has 2 findings blocks for scale 'n20'; keep one"):
        check_readme(tmp_path / "twice.md", n20)
    # --scale names the block when the folder does not say it
    loose = tmp_path / "copy of n20.csv"
    loose.write_text(Path(n20).read_text())
    assert check_readme(readme, loose, scale="n20") == []
    with pytest.raises(IredError, match="is not a scale name"):
        markers("n20 -->")


def test_cli(tmp_path, capsys):
    csv = write(tmp_path, [summary_row("q207", (0.014, 0.0008), (1.21, 0.01)),
                           summary_row("v", (0.013, 0.0002), (1.2, 0.01))])
    parser = argparse.ArgumentParser()
    add_findings_command(parser.add_subparsers(dest="command"))
    readme = tmp_path / "README.md"
    begin, end = markers("laptop")
    readme.write_text(f"intro\n{begin}\nold\n{end}\n")

    def run(*argv: str) -> int:
        args = parser.parse_args(["findings", *argv])
        return args.func(args)

    assert run(csv, "--check", str(readme)) == 1
    assert run(csv, "--update", str(readme)) == 0
    capsys.readouterr()
    assert run(csv, "--check", str(readme)) == 0
    assert capsys.readouterr().out == f"{readme}: findings block of scale laptop matches {csv}\n"
    assert run(csv) == 0 and capsys.readouterr().out.startswith(begin)
    assert run(csv, "--scale", "n20") == 0 and capsys.readouterr().out.startswith(markers("n20")[0])
    with pytest.raises(IredError, match="has no findings block for scale 'n20'"):
        run(csv, "--scale", "n20", "--check", str(readme))
