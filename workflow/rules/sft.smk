# Stage 2a: the base model (tiny: built and pretrained here; hf: a saved copy), the common SFT model, and
# baselines trained with the same SFT on an arm's data.


rule base_model:
    input:
        unpack(base_model_input),
        script=script_path("base_model.py"),
    output:
        directory(L.model("base")),
    log:
        L.log(L.model("base")),
    benchmark:
        L.benchmark(L.model("base"))
    params:
        config=cfg("base_model"),
        # tiny: the pretraining corpus, and checkpoints (not an output: a killed run resumes)
        args=base_model_args,
        local_model=hf_model_fingerprint,
    threads: 2
    resources:
        mem_mb=job_resource("base_model", "mem_mb"),
        runtime=job_resource("base_model", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} {params.args} --out {output:q} > {log:q} 2>&1"


rule sft:
    input:
        script=script_path("sft.py"),
        model=L.model("base"),
        corpus=L.sft_corpus(),
    output:
        directory(L.model("sft")),
    log:
        L.log(L.model("sft")),
    benchmark:
        L.benchmark(L.model("sft"))
    params:
        config=cfg("sft"),
        # Not an output: Snakemake deletes the outputs of a failed job, and a killed run must
        # find its checkpoints to resume.
        checkpoints=L.checkpoints("sft"),
    threads: 2
    resources:
        # GPUs = processes: more than 1 runs under accelerate launch (config/accelerate/{accelerate}.yaml)
        gpu=1,
        accelerate="ddp",
        mem_mb=job_resource("sft", "mem_mb"),
        runtime=job_resource("sft", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python -m prefsweep.launch --processes {resources.gpu} --accelerate {resources.accelerate:q}"
        " {input.script:q} --config-json {params.config:q} --model {input.model:q}"
        " --corpus {input.corpus:q} --out {output:q} --checkpoints {params.checkpoints:q} > {log:q} 2>&1"


rule sft_baseline:
    # A baseline model named in eval.baselines with sft_on: the workflow's own SFT on the
    # chosen responses of an arm's largest series (e.g. Pythia-6.9B SFT on maj).
    input:
        script=script_path("sft.py"),
        corpus=baseline_sft_corpus,
    output:
        directory(L.model("baseline-{name}")),
    log:
        L.log(L.model("baseline-{name}")),
    benchmark:
        L.benchmark(L.model("baseline-{name}"))
    params:
        config=cfg("sft"),
        model=baseline_name_or_path,
        local_model=baseline_fingerprint,
        checkpoints=baseline_checkpoints_dir,
    threads: 2
    resources:
        gpu=1,
        accelerate="ddp",
        mem_mb=job_resource("sft_baseline", "mem_mb"),
        runtime=job_resource("sft_baseline", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python -m prefsweep.launch --processes {resources.gpu} --accelerate {resources.accelerate:q}"
        " {input.script:q} --config-json {params.config:q} --model {params.model:q}"
        " --corpus {input.corpus:q} --out {output:q} --checkpoints {params.checkpoints:q} > {log:q} 2>&1"
