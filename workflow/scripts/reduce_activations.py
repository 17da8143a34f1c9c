from langarith.io.shards import merge_shards
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    stats = merge_shards(list(snakemake.input))
    stats.write(snakemake.output[0])
    lang, n_shards = snakemake.wildcards.lang, len(snakemake.input)
    log.info("%s: %d tokens from %d shards", lang, stats.n_tokens, n_shards)
