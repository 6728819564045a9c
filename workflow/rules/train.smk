# Stage 2, train: results/<run>/config.yaml -> the run folder results/<run>/ (layout: docs/ARCHITECTURE.md),
# through ired's dispatcher (local subprocess by default, Slurm with --profile slurm). Only final.pt is declared:
# metrics.jsonl, status.json and the intermediate checkpoints/ are not, so that a failed attempt never deletes
# them and the next attempt resumes where it stopped. The dispatcher decides the rest (ired.dispatch.runner): a
# job still in flight from a head that died is re-attached to, a finished run that is run again (forced, or its
# config changed) trains afresh, a diverged run is kept as a result.

import sys

from ired.dispatch.heads import claim_workdir

# A head that died (SIGKILL, a lost login node) leaves Snakemake's locks behind; running the same command again
# must re-attach to its jobs, not stop at "Directory cannot be locked". Cleared only when no other head is alive.
for stale_lock in claim_workdir():
    print(f"ired: removed {stale_lock}, left by a Snakemake head that is no longer running", file=sys.stderr)


rule train:
    input:
        config="results/{run}/config.yaml",
    output:
        final="results/{run}/final.pt",
    log:
        "logs/train/{run}.log",
    params:
        run_dir=lambda wildcards, output: Path(output.final).parent,
    threads: 1
    resources:
        dispatch="profiles/default/dispatch.yaml",  # ired.dispatch settings; profiles/slurm sets its own
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/train.py"
