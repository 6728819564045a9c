"""Reporting: reads files (run folders, summary.csv, cross-eval rows) and never trains or evaluates: the summary
and cross-eval tables, diagnostics, findings and their statistics, the inference-steps sweep, plots and the HTML
report."""
