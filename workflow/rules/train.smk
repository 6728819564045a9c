# Stage 2, train: results/<scale>/<run>/config.yaml -> the run folder results/<scale>/<run>/ (layout:
# docs/ARCHITECTURE.md), through ired's dispatcher (local subprocess by default, Slurm with --profile slurm). Only
# final.pt is declared: metrics.jsonl, status.json and the intermediate checkpoints/ are not, so that a failed or
# stopped attempt never deletes them and the next attempt resumes where it stopped.
#
# Done is done (docs/PIPELINE.md, "What is never lost"): Snakemake deletes final.pt before it runs the job, whether
# the job was forced, its config changed, or an interrupted head left it incomplete, so the rule tells the
# dispatcher which: `fresh=1` only when this command forces the run (--forcerun/-R train or its final.pt, -F, -f
# on it). The dispatcher then trains afresh; a changed config (the run folder's resolved_config.yaml differs from
# config.yaml) trains afresh too; anything else collects the finished result (final.pt restored from the run's own
# checkpoint, no job) or resumes the unfinished run from its newest checkpoint. A diverged run is a result.


def is_forced(wildcards):
    """1 when this command forces the training of this run, else 0 (a resource: not a rerun trigger)."""
    final = os.path.normpath(f"{OUT}/{wildcards.run}/final.pt")
    settings = workflow.dag_settings
    named = {os.path.normpath(str(t)) for t in settings.forcerun or ()}
    targets = {os.path.normpath(str(t)) for t in settings.targets or ()}
    forced = settings.forceall or "train" in named or final in named or (settings.forcetargets and final in targets)
    return int(bool(forced))


rule train:
    input:
        config=f"{OUT}/{{run}}/config.yaml",
    output:
        final=f"{OUT}/{{run}}/final.pt",
    log:
        f"{LOGS}/train/{{run}}.log",
    params:
        run_dir=lambda wildcards, output: Path(output.final).parent,
    threads: 1
    resources:
        dispatch="profiles/default/dispatch.yaml",  # ired.dispatch settings; profiles/slurm sets its own
        fresh=is_forced,  # 1: this command forces the run, which retrains it from step 0
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/train.py"
