from langarith.io.langid import identify_file
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]):
    identify_file(snakemake.input[0], snakemake.output[0], snakemake.params.langid_model)
