# Stage 4a: answers to the held-out eval questions, FastChat model_answer format.


rule answers:
    input:
        script=script_path("answers.py"),
        model=f"{R}/hf/{{model_id}}",
        questions=f"{R}/eval/question.jsonl",
    output:
        f"{R}/eval/model_answer/{{model_id}}.jsonl",
    log:
        f"{L}/eval/model_answer/{{model_id}}.log",
    benchmark:
        f"{B}/eval/model_answer/{{model_id}}.tsv"
    params:
        config=cfg("answers"),
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=60,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --model {input.model}"
        " --model-id {wildcards.model_id} --questions {input.questions} --threads {threads}"
        " --out {output} > {log} 2>&1"
