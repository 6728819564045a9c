"""The HTML report in a real browser: headless Chromium loads a report of synthetic runs, and a probe script
added to a copy of the page records JavaScript errors, clicks a column header and filters by status; the dumped
DOM carries its results. A screenshot is saved in the test's temporary folder.

CI (``CI`` set) installs Debian's ``chromium`` (``.ci/run``) and this test fails there without it; elsewhere it is
skipped only when no Chromium is installed. ``IRED_SCREENSHOT=path`` also writes the screenshot there (how
docs/report.png is made).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import write_eval_jsons, write_run

from ired.reporting.cross_eval import aggregate_cross_eval
from ired.reporting.findings_readme import write_findings
from ired.reporting.html_report import write_html_report
from ired.reporting.summary import write_summary

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH = 1400

# Runs first in <head>: every error and console.error of the page is recorded.
PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', function(e){ window.__errors.push('error: ' + e.message); });
var __ce = console.error; console.error = function(){ window.__errors.push('console.error: ' +
  Array.prototype.join.call(arguments, ' ')); __ce.apply(console, arguments); };
</script>"""

# Runs last: sort the experiment table by val_task_mse twice, filter by status, report into the DOM.
PROBE_TAIL = """<script>
(function(){
  var out = {errors: window.__errors};
  try {
    var table = document.getElementById('summary');
    var heads = Array.prototype.slice.call(table.querySelectorAll('thead th'));
    var th = heads.filter(function(h){ return h.textContent.trim() === 'val_task_mse'; })[0];
    var order = function(){ return Array.prototype.map.call(table.tBodies[0].rows,
      function(r){ return r.getAttribute('data-experiment'); }); };
    out.before = order();
    th.click(); out.asc = order();
    th.click(); out.desc = order();
    var sel = document.getElementById('filter-status');
    sel.value = 'collapsed'; sel.dispatchEvent(new Event('change'));
    out.visible = Array.prototype.filter.call(document.querySelectorAll('#runs tbody tr'),
      function(r){ return !r.hidden; }).map(function(r){ return r.getAttribute('data-experiment'); });
    sel.value = ''; sel.dispatchEvent(new Event('change'));
    var text = document.body.innerText;
    out.comment_visible = text.indexOf('<!--') >= 0;
    out.table_source_visible = text.indexOf('|---|') >= 0;
    out.findings_tables = document.querySelectorAll('.findings table').length;
    out.verdict = (document.querySelector('.verdict') || {}).innerText || '';
    out.page_width = document.documentElement.scrollWidth;
    out.ready_ms = Math.round(performance.now());
    out.overflowing = Array.prototype.filter.call(document.querySelectorAll('div.wide'),
      function(d){ return d.scrollWidth > d.clientWidth + 2; }).map(function(d){ return d.firstChild.id; });
  } catch (e) { out.errors.push('probe: ' + e.message); }
  var pre = document.createElement('pre'); pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


def _chromium() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but no Chromium ({', '.join(BROWSERS)}) is installed: .ci/run installs `chromium`")
    pytest.skip("no Chromium installed (CI installs Debian's `chromium`; the test never skips there)")
    return None


def _run(browser: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--disable-extensions", f"--window-size={WIDTH},1800", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def report(tmp_path) -> Path:
    """A report of four synthetic experiments (9 runs): stable, collapsed, diverged, and the baseline."""
    from ired.reporting import plots

    res, evals = tmp_path / "results", tmp_path / "evals"
    specs, jsons = [], []
    plan = (("q207", "healthy", (0.0140, 0.0150, 0.0145)), ("study_good", "healthy", (0.0110, 0.0112, 0.0111)),
            ("q206", "collapse", (0.0207, 0.0207)), ("scalar_cd", "divergence", (0.5,)))
    for exp, kind, vals in plan:
        for seed, val in enumerate(vals):
            name = f"{exp}-s{seed}"
            d = write_run(res, name, kind, seed=seed, final_val=val,
                          status="diverged" if kind == "divergence" else "completed")
            specs.append({"experiment": exp, "seed": seed, "run_dir": d, "run_id": name,
                          "description": f"{exp}: a synthetic {kind} experiment with a description long enough "
                                         "to be shortened in the table"})
            jsons += write_eval_jsons(evals, name, d, {"train_subset": val, "val": val, "val_harder": 0.2 + val})
    aggregate_cross_eval(jsons, res / "cross_eval.csv")
    write_summary(specs, res / "cross_eval.csv", res / "summary.csv", res / "summary.md", res / "runs.csv")
    write_findings(res / "summary.csv", res / "findings.md", baseline="q207")
    tables = {name: res / file for name, file in plots.TABLES.items()}
    ablation = plots.render("ablation", res / "plots" / "ablation.png", tables)
    curves = []
    first = plots.render("curves", res / "plots" / "curves" / "q207-s0.png", tables, run_dir=specs[0]["run_dir"])
    for spec in specs:
        png = res / "plots" / "curves" / f"{spec['run_id']}.png"
        if png != first:
            shutil.copyfile(first, png)
        curves.append(png)
    return write_html_report(res / "report.html", res / "summary.csv", res / "runs.csv", res / "cross_eval.csv",
                             res / "findings.md", [ablation], curves)


def test_report_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    text = report.read_text()
    probed = report.with_name("report_probe.html")  # beside the report: its relative links still resolve
    probed.write_text(text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>", 1))

    dump = _run(browser, "--virtual-time-budget=3000", "--dump-dom", probed.as_uri())
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', dump.stdout, re.S)
    assert match, f"no probe result in the dumped DOM (exit {dump.returncode}): {dump.stderr[-2000:]}"
    result = json.loads(match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))

    assert result["errors"] == [], f"JavaScript errors in the report: {result['errors']}"
    assert not result["comment_visible"] and not result["table_source_visible"], "findings shown as source"
    assert result["findings_tables"] >= 1
    assert result["verdict"].startswith("Verdict:") and "study_good" in result["verdict"]
    # sorting by val_task_mse: ascending, then descending, by the numbers of summary.csv
    summary = pd.read_csv(report.with_name("summary.csv"))
    want = list(summary.sort_values("val_task_mse_mean")["experiment"])
    assert result["before"] == list(summary["experiment"])
    assert result["asc"] == want and result["desc"] == want[::-1]
    assert result["visible"] == ["q206", "q206"]  # the status filter leaves the collapsed runs
    assert result["ready_ms"] < 2000, f"the page took {result['ready_ms']} ms to be ready"
    assert result["page_width"] <= WIDTH + 20, "the page is wider than the window"
    assert result["overflowing"] == [], f"tables wider than the {WIDTH} px window: {result['overflowing']}"

    shot = tmp_path / "report.png"
    done = _run(browser, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--hide-scrollbars",
                report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, (
        f"no screenshot (exit {done.returncode}): {done.stderr[-1500:]}")
    errors = [line for line in done.stderr.splitlines() if "Uncaught" in line]
    assert errors == [], f"console errors loading the unmodified report: {errors}"
    if target := os.environ.get("IRED_SCREENSHOT"):
        shutil.copyfile(shot, target)
