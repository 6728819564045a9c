# Stage 2, train: the resolved config of each run -> results/<scale>/<run>/config.yaml (rule resolve, a job: parsing
# writes nothing) -> the run folder results/<scale>/<run>/ (layout:
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

from ired.runs.atomic import write_text_atomic


rule resolve:
    output:
        config=f"{RUN.config}",
    log:
        f"{RUN.pipeline_log('resolve')}",
    params:
        text=get_run_config_text,  # the params trigger: reruns when the text changes
    localrule: True
    run:  # in the Snakemake process itself (no interpreter started per run): the text, atomically
        write_text_atomic(output.config, params.text)
        Path(log[0]).write_text(f"wrote {output.config}\n")


rule train:
    input:
        config=f"{RUN.config}",
    output:
        final=f"{RUN.final}",
    log:
        f"{RUN.pipeline_log('train')}",
    params:
        run_dir=lambda wildcards: SCALE.run(wildcards.run).folder,
    threads: 1
    resources:
        dispatch=DISPATCH_FILE,  # where jobs go (common.smk: the profile's settings file), never --set-resources
        **job_resources("train"),  # runtime, mem_mb, cpus_per_task, gpu ... per scale (config `resources`)
        fresh=is_forced,  # 1: this command forces the run, which retrains it from step 0
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/train.py"
