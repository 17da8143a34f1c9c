import polars as pl

from langarith.figures.scores import score_heatmap
from langarith.io.readers import read_parquet
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]):
    wc = snakemake.wildcards
    scores = read_parquet(snakemake.input[0]).filter(
        (pl.col("selection") == wc.selection) & (pl.col("condition") == wc.condition)
    )
    title = f"{wc.model} · {wc.selection} · {wc.condition}: forcing success"
    score_heatmap(scores, "success_rate", title, snakemake.output[0])
