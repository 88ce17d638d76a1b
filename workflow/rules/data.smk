# Stage 1: ballots -> held-out split -> per-arm pair pools -> nested, matched series.


rule ballots:
    input:
        script=script_path("ballots.py"),
    output:
        f"{R}/data/ballots.jsonl",
    log:
        f"{L}/data/ballots.log",
    params:
        config=cfg("ballots"),
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --out {output} > {log} 2>&1"


rule split:
    input:
        script=script_path("split.py"),
        ballots=rules.ballots.output[0],
    output:
        f"{R}/data/split.json",
    log:
        f"{L}/data/split.log",
    params:
        config=cfg("split"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --ballots {input.ballots}"
        " --out {output} > {log} 2>&1"


rule pool:
    input:
        script=script_path("pool.py"),
        ballots=rules.ballots.output[0],
        split=rules.split.output[0],
    output:
        f"{R}/data/pool/{{arm}}.parquet",
    log:
        f"{L}/data/pool/{{arm}}.log",
    params:
        config=cfg("data"),
    resources:
        mem_mb=4000,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --ballots {input.ballots}"
        " --split {input.split} --arm {wildcards.arm} --out {output} > {log} 2>&1"


rule series:
    input:
        script=script_path("series.py"),
        ref_pool=f"{R}/data/pool/{REF_ARM}.parquet",
        pool=f"{R}/data/pool/{{arm}}.parquet",
    output:
        pairs=f"{R}/data/{{arm}}/{{matching}}/n{{size}}/pairs.parquet",
        manifest=f"{R}/data/{{arm}}/{{matching}}/n{{size}}/manifest.json",
    log:
        f"{L}/data/{{arm}}/{{matching}}/n{{size}}.log",
    params:
        config=cfg("data"),
        out_dir=series_out_dir,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --ref-pool {input.ref_pool}"
        " --pool {input.pool} --arm {wildcards.arm} --matching {wildcards.matching}"
        " --size {wildcards.size} --out-dir {params.out_dir} > {log} 2>&1"


rule sft_corpus:
    input:
        script=script_path("sft_corpus.py"),
        ballots=rules.ballots.output[0],
        split=rules.split.output[0],
    output:
        f"{R}/data/sft.jsonl",
    log:
        f"{L}/data/sft_corpus.log",
    params:
        config=cfg("data"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --ballots {input.ballots}"
        " --split {input.split} --out {output} > {log} 2>&1"


rule eval_questions:
    input:
        script=script_path("eval_questions.py"),
        ballots=rules.ballots.output[0],
        split=rules.split.output[0],
    output:
        questions=f"{R}/eval/question.jsonl",
        reference=f"{R}/eval/reference_answer/reference.jsonl",
    log:
        f"{L}/data/eval_questions.log",
    params:
        config=cfg("data"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --ballots {input.ballots}"
        " --split {input.split} --questions {output.questions} --reference {output.reference}"
        " > {log} 2>&1"


rule data_all:
    input:
        data_targets(),


rule eval_pairs:
    # The arm's pairs over the held-out eval prompts: preference accuracy, never training.
    input:
        script=script_path("pool.py"),
        ballots=rules.ballots.output[0],
        split=rules.split.output[0],
    output:
        f"{R}/data/eval_pairs/{{arm}}.parquet",
    log:
        f"{L}/data/eval_pairs/{{arm}}.log",
    params:
        config=cfg("data"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --ballots {input.ballots}"
        " --split {input.split} --arm {wildcards.arm} --eval --out {output} > {log} 2>&1"
