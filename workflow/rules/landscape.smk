# Stage 4b, landscape: the inference-steps sweep (ired.landscape) of each run's last checkpoint - task MSE,
# rejected-step share and energy monotonicity per number of inference gradient steps per level - one JSON per
# run, then results/inference_sweep.csv with one row per run x split x K. Reads checkpoints, never trains.


rule inference_sweep:
    input:
        checkpoint=f"{OUT}/{{run}}/milestones/last.pt",
    output:
        sweep=f"{OUT}/{{run}}/inference_sweep.json",
    log:
        f"{LOGS}/inference_sweep/{{run}}.log",
    params:
        steps=config["inference_sweep"]["steps"],
        splits=config["inference_sweep"]["splits"],
        weights=config["inference_sweep"]["weights"],
        run=get_sweep_run,
    wildcard_constraints:
        run=alternatives(KNOWN_RUNS),
    threads: 1
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/inference_sweep.py"


rule inference_sweep_table:
    input:
        sweeps=get_sweeps,
    output:
        table=f"{OUT}/inference_sweep.csv",
    log:
        f"{LOGS}/inference_sweep/table.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/inference_sweep_table.py"
