# Stage 3: every model (and evaluated checkpoint) -> a self-contained HuggingFace directory.


rule convert:
    input:
        unpack(convert_input),
        script=script_path("convert.py"),
    output:
        directory(L.export("{model_id}")),
    log:
        L.log(L.export("{model_id}")),
    params:
        config=cfg("convert"),
        source=convert_source,
        base=convert_base,
    resources:
        mem_mb=job_resource("convert", "mem_mb"),
        runtime=job_resource("convert", "runtime"),
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q} {params.source}"
        " {params.base} --model-id {wildcards.model_id:q} --out {output:q} > {log:q} 2>&1"
