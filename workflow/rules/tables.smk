# Stage 4c: win-rate tables of the final models, and of every evaluated checkpoint (evolution).


rule win_rates:
    input:
        unpack(welfare_inputs),
        script=script_path("win_rates.py"),
        judgments=[L.judgment(JUDGE, m) for m in P.judged_model_ids(config)],
        answers=table_answers(P.final_model_ids(config)),
        manifests=manifests(),
        models=dpo_models(),
        questions=L.questions(),
    output:
        table=report(L.table("win_rates"), caption="../report/win_rates.rst", category="Tables"),
        diffs=report(L.table("arm_differences"), caption="../report/arm_differences.rst", category="Tables"),
        groups=report(L.table("win_rates_groups"), caption="../report/win_rates_groups.rst", category="Tables"),
        **({"welfare": report(L.table("welfare"), caption="../report/welfare_table.rst", category="Tables")}
           if WELFARE else {}),
    log:
        L.log(L.table("win_rates")),
    params:
        config=cfg("win_rates"),
        run_info=run_infos,
        welfare=welfare_args,
    group:
        EVAL_GROUP
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --judgments {input.judgments:q}"
        " --answers {input.answers:q} --manifests {input.manifests:q} --run-info {params.run_info:q}"
        " --questions {input.questions:q}"
        " --out {output.table:q} --diff-out {output.diffs:q} --groups-out {output.groups:q} {params.welfare}"
        " > {log:q} 2>&1"


rule evolution:
    input:
        script=script_path("win_rates.py"),
        judgments=evolution_judgments,
        answers=evolution_answers,
        manifests=manifests(),
        models=dpo_models(),
        questions=L.questions(),
    output:
        table=L.table("evolution"),
        diffs=L.table("evolution_differences"),
        groups=L.table("evolution_groups"),
    log:
        L.log(L.table("evolution")),
    params:
        config=cfg("win_rates"),
        run_info=run_infos,
        questions=evolution_questions_arg,
    # Not in EVAL_GROUP: its inputs are known only after the DAG's update (the checkpoints'
    # judgments), and a cluster group that gains members at that update loses some of them
    # (Snakemake caches group jobs: a kept checkpoint's judgment was then never scheduled).
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --no-wandb {params.questions} --judgments {input.judgments:q}"
        " --answers {input.answers:q} --manifests {input.manifests:q} --run-info {params.run_info:q}"
        " --questions {input.questions:q}"
        " --out {output.table:q} --diff-out {output.diffs:q} --groups-out {output.groups:q} > {log:q} 2>&1"


rule eval_all:
    input:
        eval_targets(),
