from langarith.jobs import job_logging
from langarith.models import prepare_model

with job_logging(snakemake.log[0]) as log:
    manifest = prepare_model(snakemake.params.source, snakemake.output[0])
    log.info("prepared %s: %s", snakemake.wildcards.model, manifest)
