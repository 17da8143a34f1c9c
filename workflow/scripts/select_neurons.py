from langarith.io.activations import ActivationStats
from langarith.io.selection import run_lape
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    selection = snakemake.params.selection
    summary = run_lape(
        [ActivationStats.read(path) for path in snakemake.input],
        languages=snakemake.params.languages,
        top_rate=selection["top_rate"],
        filter_rate=selection.get("filter_rate", 0.95),
        activation_bar_ratio=selection.get("activation_bar_ratio", 0.95),
        out_parquet=snakemake.output.neurons,
        out_masks=snakemake.output.masks,
        out_summary=snakemake.output.summary,
    )
    log.info("neurons per language: %s", summary["neurons_per_language"])
