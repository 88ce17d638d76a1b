# Stage 3: every model (and kept checkpoint) -> a self-contained HuggingFace directory.


def convert_input(wildcards):
    """Source directory of a model id, plus what must exist before it (see prefsweep.paths)."""
    cell = P.parse_model_id(wildcards.model_id)
    if cell.kind in ("base", "sft"):
        return {"source": f"{R}/models/{cell.kind}"}
    if cell.kind == "baseline":
        spec = baseline_spec(cell.baseline)
        return {"source": f"{R}/models/{cell.model_id}"} if spec.get("sft_on") else {}
    run = f"{R}/dpo/{cell.arm}/{cell.matching}/n{cell.size}/seed{cell.seed}"
    inputs = {"final": f"{run}/final", "base": init_model_dir()}
    if cell.kind == "checkpoint":
        inputs["source"] = f"{run}/checkpoints/checkpoint-{cell.step}"
    else:
        inputs["source"] = f"{run}/final"
    return inputs


def convert_source(wildcards, input):
    """Path the converter reads: an input, or a baseline's hub id used as it is."""
    if "source" in input.keys():
        return input.source
    return baseline_spec(P.parse_model_id(wildcards.model_id).baseline)["name_or_path"]


def convert_base(wildcards, input):
    return f"--base {input.base}" if "base" in input.keys() else ""


rule convert:
    input:
        unpack(convert_input),
    output:
        directory(f"{R}/hf/{{model_id}}"),
    log:
        f"{L}/hf/{{model_id}}.log",
    params:
        config=cfg("convert"),
        source=convert_source,
        base=convert_base,
    resources:
        mem_mb=32000,
        runtime=60,
    shell:
        "python {SCRIPTS}/convert.py --config-json {params.config:q} --source {params.source}"
        " {params.base} --model-id {wildcards.model_id} --out {output} > {log} 2>&1"


rule sft_baseline:
    # A baseline model named in eval.baselines with sft_on: the workflow's own SFT on the
    # chosen responses of an arm's largest series (e.g. Pythia-6.9B SFT on maj).
    input:
        corpus=baseline_sft_corpus,
    output:
        directory(f"{R}/models/baseline-{{name}}"),
    log:
        f"{L}/models/baseline-{{name}}.log",
    benchmark:
        f"{B}/models/baseline-{{name}}.tsv"
    params:
        config=cfg("sft"),
        model=baseline_name_or_path,
        checkpoints=f"{R}/train/baseline-{{name}}/checkpoints",
    threads: 2
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=480,
    shell:
        "{WANDB_ENV} python {SCRIPTS}/sft.py --config-json {params.config:q} --model {params.model}"
        " --corpus {input.corpus} --out {output} --checkpoints {params.checkpoints} > {log} 2>&1"
