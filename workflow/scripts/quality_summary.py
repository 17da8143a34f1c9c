import polars as pl

from langarith.core.text_quality import summarise
from langarith.figures.steering import plot_quality
from langarith.io.atomic import write_parquet
from langarith.io.readers import read_parquet
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    frames = [
        read_parquet(path).with_columns(pl.lit(selection).alias("selection"))
        for path, (selection, _condition) in zip(snakemake.input, snakemake.params.cells)
    ]
    summary = summarise(pl.concat(frames, how="diagonal_relaxed"), snakemake.params.max_repetition)
    write_parquet(summary, snakemake.output.table)
    title = f"{snakemake.wildcards.model}: forcing success and fluency"
    plot_quality(summary, title, snakemake.output.figure)
    log.info("overall:\n%s", summary.filter(pl.col("target_lang") == "all"))
