"""The Findings text (Markdown) generated from the summary table.

:func:`findings_markdown` states, from ``results/<scale>/summary.csv`` only: which experiment is best on ``val`` and on
``val_harder`` (EMA weights, last evaluation, mean ± std over seeds), by how much versus the baseline (q207 by
default), with the 95% confidence interval of the difference, versus the trivial baselines, and whether each
difference is significant. It compares only experiments trained for the baseline's number of steps (a longer
run is a different budget, not a better variant) and with the baseline's seeds (an experiment whose seed set
differs, e.g. a seed added after a first result, is not compared), and says which it left out. Honest
negatives ("no variant beats q207 significantly") are stated as such.

The comparisons and their test are :mod:`ired.reporting.comparisons`' (Welch's test, Holm-Bonferroni over the
family of experiments x splits).

Every task MSE of the text is of the EMA weights (the summary's ``_mean`` / ``_std`` columns; the raw weights'
are the ``_raw`` columns, which the text does not use), and the text says so.

The text is deterministic (no dates, fixed number formats): :mod:`ired.reporting.findings_readme` writes it to
``results/<scale>/findings.md`` and checks the README's block of each scale against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ired.reporting.columns import mean_of, std_of
from ired.reporting.comparisons import (
    ALPHA,
    CI_LEVEL,
    DEFAULT_BASELINE,
    SPLITS,
    Comparison,
    as_number,
    comparable,
    compare_family,
    seed_set,
    summary_rows,
)
from ired.reporting.formatting import finite, g, pm
from ired.reporting.stats import WelchResult

if TYPE_CHECKING:
    import pandas as pd

SNAPSHOT = "docs/results/{scale}"
"""Where a scale's tables are copied for the README (the block of that scale is checked against its summary.csv)."""


# --------------------------------------------------------------------------------------------------
# The text
# --------------------------------------------------------------------------------------------------


def _signed(v: float, digits: int = 2) -> str:
    return f"{v:+.{digits}g}" if finite(v) else "n/a"


def _pct(v: float) -> str:
    return f"{v * 100:+.1f}%" if finite(v) else "n/a"


def _p(v: float) -> str:
    return f"{v:.2g}" if finite(v) else "n/a"


def _ci(test: WelchResult) -> str:
    return f"[{_signed(test.ci_low)}, {_signed(test.ci_high)}]" if finite(test.ci_low) else "[n/a]"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _test_words(c: Comparison) -> str:
    """``significantly better (Holm-adjusted p = ...; Welch t = ..., df = ..., p = ...)`` and the like."""
    test = c.test
    if c.significant is None:
        return "undecided: one seed" if min(c.n, c.base_n) < 2 else "undecided: no seed variance"
    stat = f"Welch t = {test.t:.2f}, df = {test.df:.1f}, p = {_p(test.p)}"
    head = f"significantly {'better' if c.diff < 0 else 'worse'}" if c.significant else "not significant"
    return f"{head} (Holm-adjusted p = {_p(c.p_holm)}; {stat})"


def _split_sentence(split: str, best: Comparison, base_row: Mapping[str, Any], baseline: str) -> str:
    metric = f"{split}_task_mse"
    side = "below" if best.diff < 0 else "above"
    # the lowest mean of the compared experiments; when even it is above the baseline, say so rather than "best"
    lead = (f"best is `{best.experiment}`" if best.diff < 0
            else f"no compared experiment is below {baseline}; the closest is `{best.experiment}`")
    text = (f"- **{split}**: {lead}, {metric} (EMA) {pm(best.mean, best.std)} ({_seeds(best.n)}), "
            f"{_signed(best.diff)} ({_pct(best.rel)}; {CI_LEVEL:.0%} CI {_ci(best.test)}) {side} {baseline}'s "
            f"{pm(best.base_mean, best.base_std)} ({_seeds(best.base_n)}): {_test_words(best)}.")
    trivial = []
    for key, name in (("predict_zero_mse", "predict zero"), ("predict_mean_mse", "predict the mean")):
        b = as_number(base_row, f"{split}_{key}")
        if finite(b) and b:
            rel = (best.mean - b) / b
            trivial.append(f"{abs(rel) * 100:.0f}% {'below' if rel < 0 else 'above'} {name} ({g(b)})")
    if trivial:
        text += f" Against the trivial baselines on {split}, `{best.experiment}` is " + " and ".join(trivial) + "."
    return text


def _method(m: int, k: int) -> str:
    return (f"Test: Welch's two-sided t-test of each experiment against the baseline on each split; the p-values "
            f"of the family of all {m} comparisons ({k} experiments x {len(SPLITS)} splits) are corrected with "
            f"Holm-Bonferroni, and a difference is *significant* when its Holm-adjusted p < {ALPHA:g} (family-wise "
            f"error rate {ALPHA:.0%}). Each effect is the difference of means with its {CI_LEVEL:.0%} Welch "
            "confidence interval (per comparison, not adjusted). Only experiments with the baseline's budget and "
            "seeds are compared.")


def findings_markdown(summary: pd.DataFrame, baseline: str = DEFAULT_BASELINE, scale: str = "<scale>") -> str:
    """The Findings text (Markdown, no markers) of ``scale`` from its summary table; see the module docstring."""
    from ired.reporting.inference_sweep import PATH_K, sweep_column

    rows = summary_rows(summary)
    source = f"`results/{scale}/summary.csv`"
    if baseline not in rows:
        return (f"Generated by `ired.findings` from {source}: the baseline `{baseline}` was not run "
                f"(experiments: {', '.join(rows) or 'none'}), so nothing is compared.\n")
    compared, budgets, other_seeds = comparable(summary, baseline)
    by_split = compare_family(summary, baseline, compared)
    m = sum(finite(c.p_holm) for s in SPLITS for c in by_split[s].values())
    base = rows[baseline]
    seeds = " ".join(seed_set(base) or ("not recorded",))
    left_out = "".join(
        f"; left out ({why}): {', '.join(names)}"
        for why, names in (("other budgets", budgets), ("other seeds, not comparable", other_seeds)) if names
    )
    lines = [
        f"Generated by `ired.findings` from {source}, the {scale} scale (every task MSE below is of the EMA "
        "weights, at the last evaluation of each run, mean ± std over seeds); check with "
        f"`ired findings {SNAPSHOT.format(scale=scale)}/summary.csv --check README.md`. " + _method(m, len(compared)),
        "",
        f"Baseline `{baseline}`: {base.get('description') or ''} Compared: the {len(compared)} experiments trained "
        f"for its {g(base.get('steps'))} steps with its seeds ({seeds}){left_out}.",
        "",
    ]
    for split in SPLITS:
        ranked = sorted((c for c in by_split[split].values() if finite(c.mean)), key=lambda c: c.mean)
        if ranked:
            lines.append(_split_sentence(split, ranked[0], base, baseline))
        else:
            lines.append(f"- **{split}**: no compared experiment has a {split}_task_mse.")
    better = {s: [e for e, c in by_split[s].items() if c.verdict == "better"] for s in SPLITS}
    worse = {s: [e for e, c in by_split[s].items() if c.verdict == "worse"] for s in SPLITS}
    undecided = sorted({e for s in SPLITS for e, c in by_split[s].items() if c.verdict.startswith("undecided")})
    lines.append(
        f"- Significant against {baseline} (Holm-adjusted p < {ALPHA:g}): "
        + "; ".join(f"better on {s}: {', '.join(better[s]) or 'none'}; worse on {s}: {', '.join(worse[s]) or 'none'}"
                    for s in SPLITS)
        + (f"; undecided (one seed): {', '.join(undecided)}" if undecided else "") + "."
    )
    if not any(better.values()):
        verdict = (f"no variant beats {baseline} significantly (Holm-adjusted p < {ALPHA:g} over {m} comparisons), "
                   "on val or on val_harder.")
    else:
        verdict = "; ".join(
            f"`{e}` beats {baseline} significantly on {s} (Holm-adjusted p = {_p(by_split[s][e].p_holm)}, "
            f"{_signed(by_split[s][e].diff)} {_ci(by_split[s][e].test)})"
            for s in SPLITS for e in better[s]
        ) + f" ({m} comparisons)."
    lines.append(f"- **Verdict**: {verdict[:1].upper()}{verdict[1:]}")
    landscape = [sweep_column("val", "task_mse", 1), sweep_column("val", "task_mse", 20),
                 sweep_column("val", "rejected_frac", PATH_K), sweep_column("val", "energy_monotone_frac", PATH_K)]
    has_sweep = any(mean_of(c) in summary.columns for c in landscape)
    if has_sweep:
        best_val = min((c for c in by_split["val"].values() if finite(c.mean)), key=lambda c: c.mean, default=None)
        shown = [baseline] + ([best_val.experiment] if best_val else [])
        parts = []
        for exp in shown:
            r = rows[exp]
            parts.append(f"`{exp}` " + ", ".join(f"{c} {pm(r.get(mean_of(c)), r.get(std_of(c)))}" for c in landscape))
        lines.append("- Inference-side (val, EMA weights, last checkpoint): " + "; ".join(parts) + ".")
    lines += ["", _table(rows, baseline, compared, by_split, landscape if has_sweep else [])]
    return "\n".join(lines).rstrip() + "\n"


def _table(
    rows: Mapping[str, Mapping[str, Any]],
    baseline: str,
    compared: Sequence[str],
    by_split: Mapping[str, Mapping[str, Comparison]],
    landscape: Sequence[str],
) -> str:
    head = ["experiment"]
    for s in SPLITS:
        head += [f"{s}_task_mse (EMA)", f"diff vs {baseline} [{CI_LEVEL:.0%} CI]", "p (Holm)", "verdict"]
    head += list(landscape)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for exp in [baseline, *compared]:
        r = rows[exp]
        status = r.get("status")
        cells = [f"`{exp}`" + (f" ({status})" if status and status != "stable" else "")]
        for s in SPLITS:
            metric = f"{s}_task_mse"
            cells.append(pm(r.get(mean_of(metric)), r.get(std_of(metric))))
            c = by_split[s].get(exp)
            if c is None:
                cells += ["-", "-", "baseline"]
            else:
                cells += [f"{_signed(c.diff)} ({_pct(c.rel)}) {_ci(c.test)}", _p(c.p_holm), c.verdict]
        cells += [pm(r.get(mean_of(c)), r.get(std_of(c))) for c in landscape]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
