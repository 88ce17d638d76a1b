# Stage 5: the paper's figures and the report.

PLOTS = ["win_rate_vs_pairs", "evolution", "groups", "length"]


def plot_inputs(wildcards):
    inputs = {
        "win_rates": f"{R}/eval/win_rates.csv",
        "groups": f"{R}/eval/win_rates_groups.csv",
        "diffs": f"{R}/eval/arm_differences.csv",
    }
    if config["eval"]["checkpoints"]:
        inputs["evolution"] = f"{R}/eval/evolution.csv"
    return inputs


def plot_evolution_arg(wildcards, input):
    return f"--evolution {input.evolution}" if "evolution" in input.keys() else ""


rule plots:
    input:
        unpack(plot_inputs),
    output:
        **{
            f"{name}_{fmt}": report(
                f"{R}/plots/{name}.{fmt}",
                caption=f"../report/{name}.rst",
                category="Figures",
                labels={"figure": name, "format": fmt},
            )
            for name in PLOTS
            for fmt in config["plots"]["formats"]
        },
        done=f"{R}/plots/done.json",
    log:
        f"{L}/plots.log",
    params:
        config=cfg("plots"),
        evolution=plot_evolution_arg,
        out_dir=f"{R}/plots",
    shell:
        "{WANDB_ENV} python {SCRIPTS}/plots.py --config-json {params.config:q}"
        " --win-rates {input.win_rates} --groups {input.groups} --diffs {input.diffs}"
        " {params.evolution} --out-dir {params.out_dir} > {log} 2>&1"


rule plots_all:
    input:
        plot_targets(),
