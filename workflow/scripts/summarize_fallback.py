from langarith.experiments.fallback import summarize_fallback
from langarith.figures.tasks import fallback_figure
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    dist = summarize_fallback(
        generations=snakemake.input[0],
        langid_out=snakemake.output.langid,
        distribution_out=snakemake.output.languages,
        langid_model=snakemake.params.langid_model,
    )
    title = f"{wc.model} · {wc.selection}: fallback under cumulative deactivation"
    fallback_figure(dist, title, snakemake.output.figure)
    modal = dist.select("step", "label", "modal_lang", "modal_share").unique().sort("step")
    log.info("modal language per step:\n%s", modal)
