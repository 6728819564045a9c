# Stage 4b, the inference-steps sweep table: the sweep (ired.reporting.inference_sweep) of each selected run's last checkpoint -
# task MSE, rejected-step share and energy monotonicity per number of inference gradient steps per level, one JSON
# per run written by the rule evaluate (evaluate.smk) - -> results/<scale>/inference_sweep.csv, one row per
# run x split x K. Reads files, never trains.


rule inference_sweep_table:
    input:
        sweeps=get_inference_sweeps,
    output:
        table=f"{OUT}/inference_sweep.csv",
    log:
        f"{LOGS}/inference_sweep/table.log",
    conda:
        "../envs/ired.yaml"
    script:
        "../scripts/inference_sweep_table.py"
