from langarith.experiments.fallback import summarize_fallback
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    dist = summarize_fallback(
        generations=snakemake.input[0],
        langid_out=snakemake.output.langid,
        distribution_out=snakemake.output.languages,
        figure_out=snakemake.output.figure,
        title=f"{wc.model} · {wc.selection}: fallback under cumulative deactivation",
        langid_model=snakemake.params.langid_model,
    )
    modal = dist.select("step", "label", "modal_lang", "modal_share").unique().sort("step")
    log.info("modal language per step:\n%s", modal)
