# Stage 4a: answers to the held-out eval questions, FastChat model_answer format.


rule answers:
    input:
        # a final model's export; a kept checkpoint's run and init model (base + adapter)
        unpack(answers_input),
        script=script_path("answers.py"),
        questions=L.questions(),
    output:
        L.answers("{model_id}"),
    log:
        L.log(L.answers("{model_id}")),
    benchmark:
        L.benchmark(L.answers("{model_id}"))
    params:
        config=cfg("answers"),
        model_args=answers_model_args,
    threads: 2
    resources:
        gpu=1,
        mem_mb=job_resource("answers", "mem_mb"),
        runtime=job_resource("answers", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} {params.model_args}"
        " --model-id {wildcards.model_id:q} --questions {input.questions:q} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"
