# Stage 4b: judgments against the baseline, one file per model (the electorate or an LLM judge).


rule judge:
    input:
        unpack(judge_inputs),
        script=script_path("judge.py"),
        answers=L.answers("{model_id}"),
        baseline=baseline_answers(),
        questions=L.questions(),
    output:
        L.judgment(JUDGE, "{model_id}"),
    log:
        L.log(L.judgment(JUDGE, "{model_id}")),
    params:
        config=cfg("judge"),
        # Shared by every judge job of the experiment, read and extended by each (a response
        # is paid for once); not an output, so a failed job never deletes it.
        cache=L.judge_cache(),
        questions=checkpoint_questions_arg,
    resources:
        # Concurrent requests to one API: keep the number of judge jobs that call one bounded
        # (profiles/slurm: judge_api; the electorate calls none).
        judge_api=int(JUDGE_IMPL.calls_api),
        # a client and the answers, not a model: what 32 side by side in a group job can afford
        mem_mb=2000,
        # minutes from the judge and the questions (a cluster group job adds them up)
        runtime=judge_runtime,
    group:
        EVAL_GROUP
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q}"
        " --answers {input.answers:q} --baseline-answers {input.baseline:q}"
        " --questions {input.questions:q} --cache {params.cache:q}{params.questions} --out {output:q} > {log:q} 2>&1"
