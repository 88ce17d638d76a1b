# Stage 5: the paper's figures and the report.

# The registry of figures imports no plotting library: a dry-run stays fast.
from prefsweep.plots import registry as figures

PLOTTED = figures.plotted(welfare=WELFARE)


rule plots:
    input:
        unpack(plot_inputs),
        script=script_path("plots.py"),
    output:
        **{
            f"{name}_{fmt}": report(
                L.plot(name, fmt),
                caption=f"../report/{figures.figure(name).caption}",
                category="Figures",
                labels={"figure": name, "format": fmt},
            )
            for name in PLOTTED
            for fmt in config["plots"]["formats"]
        },
        **{
            f"{name}_csv": report(
                L.plot(name, "csv"),
                caption=f"../report/{figures.figure(name).caption}",
                category="Plotted values",
                labels={"figure": name, "format": "csv"},
            )
            for name in PLOTTED
        },
        done=L.plots_done(),
    log:
        L.log(L.plots_done()),
    params:
        config=cfg("plots"),
        extra=plot_extra_args,
        out_dir=plots_out_dir,
    conda:
        "../../envs/prefsweep.yaml"
    shell:
        "python {input.script:q} --config-json {params.config:q}"
        " --win-rates {input.win_rates:q} --groups {input.groups:q} --diffs {input.diffs:q}"
        " {params.extra} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule plots_all:
    input:
        plot_targets(),
