from langarith.figures.tasks import task_heatmap
from langarith.io.readers import read_parquet
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]):
    wc = snakemake.wildcards
    task_heatmap(
        read_parquet(snakemake.input[0]),
        selection=wc.selection,
        condition=wc.condition,
        metric=snakemake.params.metric,
        baseline=snakemake.params.baseline,
        title=f"{wc.model} · {wc.task} · {wc.selection} · {wc.condition}",
        path=snakemake.output[0],
    )
