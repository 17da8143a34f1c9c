from langarith.experiments.tasks.run import task_scores
from langarith.io.atomic import write_parquet
from langarith.io.readers import read_parquet
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    identifier = None
    if snakemake.params.langid:
        from langarith.io.langid import LanguageIdentifier

        identifier = LanguageIdentifier(snakemake.params.langid_model)
    parts = [
        (selection, read_parquet(path))
        for path, (selection, _condition) in zip(snakemake.input, snakemake.params.cells)
    ]
    scores = task_scores(
        parts,
        model=snakemake.wildcards.model,
        task=snakemake.wildcards.task,
        baseline=snakemake.params.baseline,
        identifier=identifier,
    )
    write_parquet(scores, snakemake.output[0])
    log.info("%d score rows", scores.height)
