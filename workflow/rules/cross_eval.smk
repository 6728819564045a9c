# Stage 4, cross-eval table: every evaluation JSON of the selected runs and external checkpoints (written by the
# rules evaluate / evaluate_external, evaluate.smk) -> results/<scale>/cross_eval.csv, one row per JSON.


rule cross_eval:
    input:
        evaluations=get_all_evaluation_folders,
    output:
        table=f"{OUT}/cross_eval.csv",
    log:
        f"{LOGS}/cross_eval/table.log",
    params:
        files=get_all_evaluations,
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/cross_eval_table.py"
