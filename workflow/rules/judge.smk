# Stage 4b: judgments against the baseline (one file per model), then the win-rate tables.


def baseline_answers():
    if config["eval"]["baseline"] == "reference":
        return f"{R}/eval/reference_answer/reference.jsonl"
    return f"{R}/eval/model_answer/{ZERO}.jsonl"


def judgment_path(model_id):
    return f"{R}/eval/model_judgment/{JUDGE}_pair/{model_id}.jsonl"


def judged_model_ids():
    """Final models judged against the baseline; the zero point is the baseline itself when
    eval.baseline is zero, and gets win rate 0.5 by definition rather than a self-match."""
    ids = P.final_model_ids(config)
    if config["eval"]["baseline"] == "zero":
        ids = [m for m in ids if m != ZERO]
    return ids


def checkpoint_model_ids(wildcards):
    """Kept checkpoints of every DPO run: known once the runs have finished."""
    ids = []
    for arm, m, size in P.series_cells(config):
        for seed in config["dpo"]["seeds"]:
            final = checkpoints.dpo.get(arm=arm, matching=m, size=size, seed=seed).output[0]
            ckpt_dir = os.path.join(os.path.dirname(final), "checkpoints")
            steps = sorted(
                int(d.split("-")[1]) for d in os.listdir(ckpt_dir) if d.startswith("checkpoint-")
            ) if os.path.isdir(ckpt_dir) else []
            ids += [P.dpo_model_id(arm, m, size, seed, step) for step in steps]
    return ids


if JUDGE == "electorate":

    rule judge:
        input:
            answers=f"{R}/eval/model_answer/{{model_id}}.jsonl",
            baseline=baseline_answers(),
            questions=f"{R}/eval/question.jsonl",
        output:
            f"{R}/eval/model_judgment/electorate_pair/{{model_id}}.jsonl",
        log:
            f"{L}/eval/model_judgment/electorate_pair/{{model_id}}.log",
        params:
            config=cfg("judge"),
        shell:
            "python {SCRIPTS}/judge_electorate.py --config-json {params.config:q}"
            " --answers {input.answers} --baseline-answers {input.baseline}"
            " --questions {input.questions} --out {output} > {log} 2>&1"

else:

    rule judge:
        input:
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
        shell:
            "python {SCRIPTS}/judge_llm.py --config-json {params.config:q}"
            " --answers {input.answers} --baseline-answers {input.baseline}"
            " --questions {input.questions} --mode pairwise --cache {params.cache}"
            " --out {output} > {log} 2>&1"


def manifests():
    return [f"{series_dir(arm, m, size)}/manifest.json" for arm, m, size in P.series_cells(config)]


rule win_rates:
    input:
        judgments=[judgment_path(m) for m in judged_model_ids()],
        answers=[f"{R}/eval/model_answer/{m}.jsonl" for m in P.final_model_ids(config)],
        manifests=manifests(),
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
        groups=f"{R}/eval/win_rates_groups.csv",
    log:
        f"{L}/eval/win_rates.log",
    params:
        config=cfg("win_rates"),
    shell:
        "{WANDB_ENV} python {SCRIPTS}/win_rates.py --config-json {params.config:q}"
        " --judgments {input.judgments} --answers-dir {R}/eval/model_answer --manifests-dir {R}/data"
        " --out {output.table} --diff-out {output.diffs} --groups-out {output.groups} > {log} 2>&1"


def evolution_judgments(wildcards):
    return [judgment_path(m) for m in checkpoint_model_ids(wildcards)] + [
        judgment_path(m) for m in judged_model_ids() if P.parse_model_id(m).kind == "dpo"
    ]


rule evolution:
    input:
        judgments=evolution_judgments,
        manifests=manifests(),
    output:
        table=f"{R}/eval/evolution.csv",
        diffs=f"{R}/eval/evolution_differences.csv",
        groups=f"{R}/eval/evolution_groups.csv",
    log:
        f"{L}/eval/evolution.log",
    params:
        config=cfg("win_rates"),
    shell:
        "python {SCRIPTS}/win_rates.py --config-json {params.config:q} --no-wandb"
        " --judgments {input.judgments} --answers-dir {R}/eval/model_answer --manifests-dir {R}/data"
        " --out {output.table} --diff-out {output.diffs} --groups-out {output.groups} > {log} 2>&1"


rule eval_all:
    input:
        eval_targets(),
