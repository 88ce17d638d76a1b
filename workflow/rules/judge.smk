# Stage 4b: judgments against the baseline (one file per model), then the win-rate tables.


if JUDGE == "electorate":

    rule judge:
        input:
            script=script_path("judge_electorate.py"),
            answers=f"{R}/eval/model_answer/{{model_id}}.jsonl",
            baseline=baseline_answers(),
            questions=f"{R}/eval/question.jsonl",
        output:
            f"{R}/eval/model_judgment/electorate_pair/{{model_id}}.jsonl",
        log:
            f"{L}/eval/model_judgment/electorate_pair/{{model_id}}.log",
        params:
            config=cfg("judge"),
        conda:
            "../../envs/prefsweep.yaml"
        shell:
            "python {input.script} --config-json {params.config:q}"
            " --answers {input.answers} --baseline-answers {input.baseline}"
            " --questions {input.questions} --out {output} > {log} 2>&1"

else:

    rule judge:
        input:
            script=script_path("judge_llm.py"),
            answers=f"{R}/eval/model_answer/{{model_id}}.jsonl",
            baseline=baseline_answers(),
            questions=f"{R}/eval/question.jsonl",
        output:
            f"{R}/eval/model_judgment/llm_pair/{{model_id}}.jsonl",
        log:
            f"{L}/eval/model_judgment/llm_pair/{{model_id}}.log",
        params:
            config=cfg("judge"),
            cache=f"{R}/eval/judge_cache",
        resources:
            # Concurrent requests to one API: keep the number of judge jobs bounded.
            judge_api=1,
        conda:
            "../../envs/prefsweep.yaml"
        shell:
            "python {input.script} --config-json {params.config:q}"
            " --answers {input.answers} --baseline-answers {input.baseline}"
            " --questions {input.questions} --mode pairwise --cache {params.cache}"
            " --out {output} > {log} 2>&1"


rule win_rates:
    input:
        script=script_path("win_rates.py"),
        judgments=[judgment_path(m) for m in judged_model_ids()],
        answers=[answer_path(m) for m in P.final_model_ids(config)],
        manifests=manifests(),
        questions=f"{R}/eval/question.jsonl",
    output:
        table=report(
            f"{R}/eval/win_rates.csv",
            caption="../report/win_rates.rst",
            category="Tables",
        ),
        diffs=report(
            f"{R}/eval/arm_differences.csv",
            caption="../report/arm_differences.rst",
            category="Tables",
        ),
        groups=report(
            f"{R}/eval/win_rates_groups.csv",
            caption="../report/win_rates_groups.rst",
            category="Tables",
        ),
    log:
        f"{L}/eval/win_rates.log",
    params:
        config=cfg("win_rates"),
        answers_dir=answers_dir,
        manifests_dir=manifests_dir,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q}"
        " --judgments {input.judgments} --answers-dir {params.answers_dir} --manifests-dir {params.manifests_dir}"
        " --questions {input.questions}"
        " --out {output.table} --diff-out {output.diffs} --groups-out {output.groups} > {log} 2>&1"


rule evolution:
    input:
        script=script_path("win_rates.py"),
        judgments=evolution_judgments,
        answers=evolution_answers,
        manifests=manifests(),
        questions=f"{R}/eval/question.jsonl",
    output:
        table=f"{R}/eval/evolution.csv",
        diffs=f"{R}/eval/evolution_differences.csv",
        groups=f"{R}/eval/evolution_groups.csv",
    log:
        f"{L}/eval/evolution.log",
    params:
        config=cfg("win_rates"),
        answers_dir=answers_dir,
        manifests_dir=manifests_dir,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script} --config-json {params.config:q} --no-wandb"
        " --judgments {input.judgments} --answers-dir {params.answers_dir} --manifests-dir {params.manifests_dir}"
        " --questions {input.questions}"
        " --out {output.table} --diff-out {output.diffs} --groups-out {output.groups} > {log} 2>&1"


rule eval_all:
    input:
        eval_targets(),
