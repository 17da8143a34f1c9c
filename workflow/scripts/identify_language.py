from langarith.jobs import job_logging
from langarith.langid import identify_file

with job_logging(snakemake.log[0]):
    identify_file(snakemake.input[0], snakemake.output[0], snakemake.params.langid_model)
