# Stage 4d: preference accuracy on held-out pairs (does DPO learn the electorate's preferences?).


rule pair_accuracy:
    input:
        script=script_path("pair_accuracy.py"),
        model=L.export("{model_id}"),
        pairs=L.eval_pairs(REF_ARM),
        group_pairs=L.eval_group_pairs(),
    output:
        L.pair_accuracy("{model_id}"),
    log:
        L.log(L.pair_accuracy("{model_id}")),
    params:
        config=cfg("pair_accuracy"),
    threads: 1
    resources:
        gpu=1,
        mem_mb=job_resource("pair_accuracy", "mem_mb"),
        runtime=job_resource("pair_accuracy", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} score --config-json {params.config:q} --model {input.model:q}"
        " --model-id {wildcards.model_id:q} --pairs {input.pairs:q} --group-pairs {input.group_pairs:q} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"


rule pair_accuracy_table:
    input:
        script=script_path("pair_accuracy.py"),
        results=[L.pair_accuracy(m) for m in P.final_model_ids(config)],
    output:
        table=report(L.table("pair_accuracy"), caption="../report/pair_accuracy.rst", category="Tables"),
        groups=report(L.table("pair_accuracy_groups"), caption="../report/pair_accuracy.rst", category="Tables"),
    log:
        L.log(L.table("pair_accuracy")),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} table --inputs {input.results:q} --out {output.table:q}"
        " --groups-out {output.groups:q} > {log:q} 2>&1"
