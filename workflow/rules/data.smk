# Stage 1: ballots -> held-out split -> per-arm pair pools -> nested, matched series; the SFT
# corpus, the eval questions and the held-out pairs.


rule ballots:
    input:
        unpack(user_ballots),
        script=script_path("ballots.py"),
    output:
        L.ballots(),
    log:
        L.log(L.ballots()),
    params:
        config=cfg("ballots"),
        source=ballots_source_arg,
        dataset=dataset_fingerprint,
    resources:
        mem_mb=job_resource("ballots", "mem_mb"),
        runtime=job_resource("ballots", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} {params.source}"
        " --out {output:q} > {log:q} 2>&1"


rule split:
    input:
        script=script_path("split.py"),
        ballots=L.ballots(),
    output:
        L.split(),
    log:
        L.log(L.split()),
    params:
        config=cfg("split"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --out {output:q} > {log:q} 2>&1"


rule pool:
    input:
        script=script_path("pool.py"),
        ballots=L.ballots(),
        split=L.split(),
    output:
        L.pool("{arm}"),
    log:
        L.log(L.pool("{arm}")),
    params:
        config=arm_cfg,
    resources:
        mem_mb=4000,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --split {input.split:q} --arm {wildcards.arm:q} --out {output:q} > {log:q} 2>&1"


rule series:
    input:
        script=script_path("series.py"),
        ref_pool=L.pool(REF_ARM),
        pool=L.pool("{arm}"),
    output:
        pairs=L.series_pairs("{arm}", "{matching}", "{size}"),
        manifest=L.series_manifest("{arm}", "{matching}", "{size}"),
    log:
        L.log(L.series_dir("{arm}", "{matching}", "{size}")),
    params:
        config=arm_cfg,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ref-pool {input.ref_pool:q}"
        " --pool {input.pool:q} --arm {wildcards.arm:q} --matching {wildcards.matching:q}"
        " --size {wildcards.size:q} --pairs-out {output.pairs:q} --manifest-out {output.manifest:q} > {log:q} 2>&1"


rule sft_corpus:
    # sft.data: the best responses, the lab's own file (a declared input) or HH's chosen responses.
    input:
        unpack(sft_data_input),
        script=script_path("sft_corpus.py"),
        ballots=L.ballots(),
        split=L.split(),
    output:
        L.sft_corpus(),
    log:
        L.log(L.sft_corpus()),
    params:
        config=cfg("sft_corpus"),
        sft_data=sft_data_arg,
        local_data=sft_data_fingerprint,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --split {input.split:q} {params.sft_data} --out {output:q} > {log:q} 2>&1"


rule pretrain_corpus:
    # The tiny base model's pretraining text: every candidate of every training prompt.
    input:
        script=script_path("sft_corpus.py"),
        ballots=L.ballots(),
        split=L.split(),
    output:
        L.pretrain_corpus(),
    log:
        L.log(L.pretrain_corpus()),
    params:
        config=cfg("data"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --split {input.split:q} --all-candidates --out {output:q} > {log:q} 2>&1"


rule eval_questions:
    input:
        script=script_path("eval_questions.py"),
        ballots=L.ballots(),
        split=L.split(),
    output:
        questions=L.questions(),
        reference=L.reference_answers(),
    log:
        L.log(L.questions()),
    params:
        config=cfg("data"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --split {input.split:q} --questions {output.questions:q} --reference {output.reference:q}"
        " > {log:q} 2>&1"


rule eval_pairs:
    # The arm's pairs over the held-out eval prompts: preference accuracy, never training.
    input:
        script=script_path("pool.py"),
        ballots=L.ballots(),
        split=L.split(),
    output:
        L.eval_pairs("{arm}"),
    log:
        L.log(L.eval_pairs("{arm}")),
    params:
        config=arm_cfg,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --split {input.split:q} --arm {wildcards.arm:q} --eval --out {output:q} > {log:q} 2>&1"


rule eval_group_pairs:
    # Per voter group: the pairs the group's own voters' majority prefers on the held-out
    # prompts (no rows when the ballots carry no groups): per-group preference accuracy.
    input:
        script=script_path("pool.py"),
        ballots=L.ballots(),
        split=L.split(),
    output:
        L.eval_group_pairs(),
    log:
        L.log(L.eval_group_pairs()),
    params:
        config=cfg("data"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} --ballots {input.ballots:q}"
        " --split {input.split:q} --by-group --out {output:q} > {log:q} 2>&1"


rule data_all:
    input:
        data_targets(),
