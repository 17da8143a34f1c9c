from langarith.model.loading import prepare_model
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    manifest = prepare_model(snakemake.params.source, snakemake.output[0])
    log.info("prepared %s: %s", snakemake.wildcards.model, manifest)
