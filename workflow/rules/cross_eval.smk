# Stage 4, cross-eval: every exported checkpoint x protocol x split x weights -> one small JSON each (one job per
# checkpoint, through ired's dispatcher like training: local by default, Slurm with --profile slurm; its records
# are in results/<scale>/<run>/dispatch/eval-<milestone>/), then results/<scale>/cross_eval.csv with one row per JSON.


rule cross_eval_checkpoint:
    input:
        checkpoint=f"{OUT}/{{run}}/milestones/{{milestone}}.pt",
    output:
        evaluations=[
            f"{OUT}/{{run}}/eval/{{milestone}}/{protocol}.{split}.{weights}.json"
            for protocol, split, weights in CROSS_EVAL
        ],
    log:
        f"{LOGS}/cross_eval/{{run}}/{{milestone}}.log",
    params:
        grid=CROSS_EVAL,
    threads: 1
    resources:
        dispatch="profiles/default/dispatch.yaml",  # ired.dispatch settings; profiles/slurm sets its own
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/cross_eval.py"


rule cross_eval:
    input:
        evaluations=get_all_evaluations,
    output:
        table=f"{OUT}/cross_eval.csv",
    log:
        f"{LOGS}/cross_eval/table.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/cross_eval_table.py"
