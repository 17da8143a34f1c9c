import polars as pl

from langarith.experiments.relevance import run_validation_job
from langarith.figures.steering import plot_relevance_validation
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    table = run_validation_job(
        corpus_files=dict(zip(snakemake.params.languages, snakemake.input.corpus)),
        corpus_kind=snakemake.params.corpus_kind,
        output=snakemake.output.table,
        settings=snakemake.params.relevance,
        model_dir=snakemake.input.get("model"),
        model_options=snakemake.params.model,
        threads=snakemake.threads,
    )
    title = f"{snakemake.wildcards.model}: relevance encoder on aligned text"
    plot_relevance_validation(table, title, snakemake.output.figure)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200):
        log.info("same- vs different-content AUC per language:\n%s", table)
