# Stage 3, evaluate: one job per run does all of its evaluation (ired.evaluation.run_milestones): the milestones its config
# names are copied to results/<scale>/<run>/milestones/ (step_NNNNNNN.pt from train.milestones, last.pt = final.pt,
# best.pt = best EMA val_task_mse), each is evaluated under every protocol x split x weights of the cross-eval grid
# (results/<scale>/<run>/eval/<milestone>/<protocol>.<split>.<weights>.json), and the last checkpoint gets the
# inference-steps sweep (results/<scale>/<run>/inference_sweep.json). The evaluation runs through ired's dispatcher
# like training (local by default, Slurm with --profile slurm; records in results/<scale>/<run>/dispatch/eval-all/).
# Its outputs are derived files only: a failed evaluation never touches the run folder's training result (final.pt,
# checkpoints/, metrics). An external checkpoint is imported as results/<scale>/<name>/milestones/external.pt and
# cross-evaluated the same way (rule evaluate_external; no inference sweep).


ruleorder: evaluate_external > evaluate  # an external checkpoint's eval/ and milestones/ are its own


rule evaluate:
    input:
        final=f"{RUN.final}",
    output:
        milestones=directory(f"{RUN.milestones}"),
        evaluations=directory(f"{RUN.evaluations}"),
        inference_sweep=f"{RUN.inference_sweep}",
    log:
        f"{RUN.pipeline_log('evaluate')}",
    params:
        run=get_evaluation_of_run,  # its milestones; experiment, seed and run for the inference sweep rows
        grid=CROSS_EVAL,
        sweep_steps=config["inference_sweep"]["steps"],
        sweep_splits=config["inference_sweep"]["splits"],
        sweep_weights=config["inference_sweep"]["weights"],
    threads: 1
    resources:
        dispatch=DISPATCH_FILE,  # where jobs go (common.smk: the profile's settings file), never --set-resources
        **job_resources("evaluate"),  # runtime, mem_mb, cpus_per_task, gpu ... per scale (config `resources`)
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/evaluate.py"


rule evaluate_external:
    input:
        source=get_external_checkpoint,
    output:
        milestones=directory(f"{RUN.milestones}"),
        evaluations=directory(f"{RUN.evaluations}"),
    log:
        f"{RUN.pipeline_log('evaluate')}",
    params:
        grid=CROSS_EVAL,
    wildcard_constraints:
        run=alternatives(EXTERNALS),
    threads: 1
    resources:
        dispatch=DISPATCH_FILE,
        **job_resources("evaluate"),
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/evaluate.py"
