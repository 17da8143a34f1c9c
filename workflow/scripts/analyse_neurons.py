from langarith.analysis import counts, overlap
from langarith.figures import neurons as figures
from langarith.io.atomic import write_parquet
from langarith.io.selection import read_selection
from langarith.workflow.jobs import job_logging

TABLES = {
    "per_language": counts.per_language,
    "per_layer": counts.per_layer,
    "depth": counts.depth_profile,
    "overlap": overlap.overlap_frame,
    "sharing": counts.sharing,
}

with job_logging(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    table = read_selection(snakemake.input.neurons, snakemake.input.summary, wc.selection)
    for name, make in TABLES.items():
        write_parquet(make(table), snakemake.output[name])
    for name, plot in figures.PLOTS.items():
        title = f"{wc.model} · {wc.selection}: {name}"
        kwargs = {"fraction": snakemake.params.deep_fraction} if name == "depth" else {}
        plot(table, title, snakemake.output[f"fig_{name}"], **kwargs)
    log.info("%s: %d assignments", wc.selection, len(table.frame))
