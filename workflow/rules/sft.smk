# Stage 2a: the base model (tiny: built here; hf: a saved copy) and the common SFT model.


rule base_model:
    input:
        unpack(base_model_input),
        script=script_path("base_model.py"),
    output:
        directory(f"{R}/models/base"),
    log:
        f"{L}/models/base.log",
    params:
        config=cfg("base_model"),
        corpus=base_model_corpus,
    resources:
        mem_mb=16000,
        runtime=60,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q}"
        " --sft-corpus {params.corpus:q} --out {output} > {log} 2>&1"


rule sft:
    input:
        script=script_path("sft.py"),
        model=rules.base_model.output[0],
        corpus=f"{R}/data/sft.jsonl",
    output:
        directory(f"{R}/models/sft"),
    log:
        f"{L}/models/sft.log",
    benchmark:
        f"{B}/models/sft.tsv"
    params:
        config=cfg("sft"),
        checkpoints=f"{R}/train/sft/checkpoints",
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=240,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --model {input.model}"
        " --corpus {input.corpus} --out {output} --checkpoints {params.checkpoints} > {log} 2>&1"
