import polars as pl

from langarith.experiments.scoring import forcing_scores
from langarith.io.atomic import write_parquet
from langarith.io.readers import read_parquet
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    model = snakemake.wildcards.model
    parts = [
        forcing_scores(read_parquet(path), model=model, selection=selection)
        for path, (selection, _condition) in zip(snakemake.input, snakemake.params.cells)
    ]
    scores = pl.concat(parts)
    write_parquet(scores, snakemake.output[0])
    overall = scores.filter((pl.col("test_lang") == "all") & (pl.col("metric") == "success_rate"))
    log.info("overall success:\n%s", overall)
