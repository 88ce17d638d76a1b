# Stage 3: every model (and kept checkpoint) -> a self-contained HuggingFace directory.


rule convert:
    input:
        unpack(convert_input),
        script=script_path("convert.py"),
    output:
        directory(f"{R}/hf/{{model_id}}"),
    log:
        f"{L}/hf/{{model_id}}.log",
    params:
        config=cfg("convert"),
        source=convert_source,
        base=convert_base,
    resources:
        mem_mb=32000,
        runtime=60,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --source {params.source}"
        " {params.base} --model-id {wildcards.model_id} --out {output} > {log} 2>&1"


rule sft_baseline:
    # A baseline model named in eval.baselines with sft_on: the workflow's own SFT on the
    # chosen responses of an arm's largest series (e.g. Pythia-6.9B SFT on maj).
    input:
        script=script_path("sft.py"),
        corpus=baseline_sft_corpus,
    output:
        directory(f"{R}/models/baseline-{{name}}"),
    log:
        f"{L}/models/baseline-{{name}}.log",
    benchmark:
        f"{B}/models/baseline-{{name}}.tsv"
    params:
        config=cfg("sft"),
        model=baseline_name_or_path,
        checkpoints=f"{R}/train/baseline-{{name}}/checkpoints",
    threads: 2
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=480,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --model {params.model}"
        " --corpus {input.corpus} --out {output} --checkpoints {params.checkpoints} > {log} 2>&1"
