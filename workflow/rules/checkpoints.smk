# Stage 3, checkpoints: the milestones a config names become declared files, results/<run>/milestones/:
# step_NNNNNNN.pt (the run's train.milestones), last.pt (final.pt) and best.pt (best EMA val_task_mse), copied
# from the trainer's undeclared checkpoints/; each external checkpoint of the config is imported as
# results/<name>/milestones/external.pt.


rule export_checkpoint:
    input:
        final=f"{OUT}/{{run}}/final.pt",
    output:
        checkpoint=f"{OUT}/{{run}}/milestones/{{milestone}}.pt",
    log:
        f"{LOGS}/export_checkpoint/{{run}}/{{milestone}}.log",
    params:
        source=get_milestone_source,
    wildcard_constraints:
        milestone=r"step_\d{7}|last|best",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/export_checkpoint.py"


rule import_checkpoint:
    input:
        source=get_external_checkpoint,
    output:
        checkpoint=f"{OUT}/{{run}}/milestones/external.pt",
    log:
        f"{LOGS}/import_checkpoint/{{run}}.log",
    params:
        source=get_external_checkpoint,
    wildcard_constraints:
        run=alternatives(EXTERNALS),
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/export_checkpoint.py"
