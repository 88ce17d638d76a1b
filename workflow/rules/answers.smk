# Stage 4a: answers to the held-out eval questions, FastChat model_answer format.


rule answers:
    input:
        script=script_path("answers.py"),
        model=L.export("{model_id}"),
        questions=L.questions(),
    output:
        L.answers("{model_id}"),
    log:
        L.log(L.answers("{model_id}")),
    benchmark:
        L.benchmark(L.answers("{model_id}"))
    params:
        config=cfg("answers"),
    threads: 2
    resources:
        gpu=1,
        mem_mb=job_resource("answers", "mem_mb"),
        runtime=job_resource("answers", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --model {input.model}"
        " --model-id {wildcards.model_id} --questions {input.questions} --threads {threads}"
        " --out {output} > {log} 2>&1"
