# Stage 2b: reference log-probs once per arm (and init), then DPO per init x arm x matching x
# size x seed (INIT_W: the {init} wildcard when dpo.init is a list, else no init in the paths).
# Size 0 is the zero point: the init model itself, no job here.


rule ref_logps:
    input:
        script=script_path("ref_logps.py"),
        model=init_model,
        pairs=ref_logps_pairs,
    output:
        L.ref_logps("{arm}", INIT_W),
    log:
        L.log(L.ref_logps("{arm}", INIT_W)),
    benchmark:
        L.benchmark(L.ref_logps("{arm}", INIT_W))
    params:
        config=cfg("ref_logps"),
    threads: 2
    resources:
        # GPUs = processes, each scoring a share of the pairs (prefsweep/launch.py)
        gpu=1,
        accelerate="ddp",
        mem_mb=job_resource("ref_logps", "mem_mb"),
        runtime=job_resource("ref_logps", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python -m prefsweep.launch --processes {resources.gpu} --accelerate {resources.accelerate:q}"
        " {input.script:q} --config-json {params.config:q} --model {input.model:q}"
        " --pairs {input.pairs:q} --out {output:q} > {log:q} 2>&1"


rule dpo:
    input:
        script=script_path("dpo.py"),
        model=init_model,
        pairs=L.series_pairs("{arm}", "{matching}", "{size}"),
        manifest=L.series_manifest("{arm}", "{matching}", "{size}"),
        # ancient(): the values for a pair never change while the init model does not; a
        # larger size added later recomputes the file but must not retrain smaller sizes.
        ref_logps=ancient(dpo_ref_logps),
    output:
        directory(L.dpo_model("{arm}", "{matching}", "{size}", "{seed}", INIT_W)),
    log:
        L.log(L.dpo_model("{arm}", "{matching}", "{size}", "{seed}", INIT_W)),
    benchmark:
        L.benchmark(L.dpo_model("{arm}", "{matching}", "{size}", "{seed}", INIT_W))
    params:
        config=dpo_cfg,
        # Not an output: Snakemake deletes the outputs of a failed job, and a killed run must
        # find its checkpoints to resume.
        checkpoints=dpo_checkpoints_dir,
        init=dpo_init_arg,
    threads: 2
    resources:
        # GPUs = processes: more than 1 runs under accelerate launch (config/accelerate/{accelerate}.yaml)
        gpu=1,
        accelerate="ddp",
        mem_mb=job_resource("dpo", "mem_mb"),
        runtime=job_resource("dpo", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python -m prefsweep.launch --processes {resources.gpu} --accelerate {resources.accelerate:q}"
        " {input.script:q} --config-json {params.config:q} --model {input.model:q}"
        " --pairs {input.pairs:q} --manifest {input.manifest:q} --ref-logps {input.ref_logps:q}"
        " --seed {wildcards.seed:q} --arm {wildcards.arm:q} --matching {wildcards.matching:q}"
        " --size {wildcards.size:q} {params.init} --out {output:q} --checkpoints {params.checkpoints:q} > {log:q} 2>&1"


# The workflow's one Snakemake checkpoint: which kept checkpoints get a model id depends on the
# pairs a prompt-matched series holds, known once the runs are done. Their conversions, answers
# and judgments join the DAG then; everything else (DPO included) is planned from the start,
# so a dry-run lists every job but those, and cluster groups downstream of DPO stay fixed.
# It only lists directories: on a cluster it runs on the submit host, not through the queue.
localrules:
    evaluated_checkpoints,


checkpoint evaluated_checkpoints:
    input:
        script=script_path("evaluated_checkpoints.py"),
        models=[L.dpo_model(*cell) for cell in CHECKPOINT_CELLS],
    output:
        L.evaluated_checkpoints(),
    log:
        L.log(L.evaluated_checkpoints()),
    params:
        runs=[L.dpo_run(*cell) for cell in CHECKPOINT_CELLS],
        # The runs' checkpoints: not outputs of dpo (a failed job's outputs are deleted).
        checkpoints=[L.checkpoints(L.dpo_run(*cell)) for cell in CHECKPOINT_CELLS],
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --runs {params.runs:q} --models {input.models:q}"
        " --checkpoints {params.checkpoints:q} --out {output:q} > {log:q} 2>&1"


rule train_all:
    input:
        train_targets(),
