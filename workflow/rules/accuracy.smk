# Stage 4c: preference accuracy on held-out pairs (does DPO learn the electorate's preferences?).


rule pair_accuracy:
    input:
        script=script_path("pair_accuracy.py"),
        model=f"{R}/hf/{{model_id}}",
        pairs=f"{R}/data/eval_pairs/{REF_ARM}.parquet",
    output:
        f"{R}/eval/pair_accuracy/{{model_id}}.json",
    log:
        f"{L}/eval/pair_accuracy/{{model_id}}.log",
    params:
        config=cfg("pair_accuracy"),
    threads: 1
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=60,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} score --config-json {params.config:q} --model {input.model}"
        " --model-id {wildcards.model_id} --pairs {input.pairs} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule pair_accuracy_table:
    input:
        script=script_path("pair_accuracy.py"),
        results=[f"{R}/eval/pair_accuracy/{m}.json" for m in P.final_model_ids(config)],
    output:
        report(
            f"{R}/eval/pair_accuracy.csv",
            caption="../report/pair_accuracy.rst",
            category="Tables",
        ),
    log:
        f"{L}/eval/pair_accuracy.log",
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} table --inputs {input.results} --out {output} > {log} 2>&1"
