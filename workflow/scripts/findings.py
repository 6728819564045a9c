"""results/findings.md from the summary table: the README's Findings block (rule findings); reads files only."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.reporting.findings_readme import write_findings  # noqa: E402 (after the log redirect)

print(write_findings(snakemake.input.summary, snakemake.output.md, snakemake.params.baseline,
                     snakemake.params.scale).read_text())
