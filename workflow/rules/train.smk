# Stage 2, train: results/<run>/config.yaml -> the run folder results/<run>/ (layout: docs/ARCHITECTURE.md),
# through ired's dispatcher (local subprocess by default, Slurm with --profile slurm). Only final.pt is declared:
# metrics.jsonl, status.json and the intermediate checkpoints/ are not, so that a failed attempt never deletes
# them and the next attempt resumes where it stopped. When a finished run (completed or diverged) is run again
# (forced, or its config changed), its checkpoints are dropped first so that it trains afresh.


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
