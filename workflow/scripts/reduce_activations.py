from langarith.io.activations import write_sites
from langarith.io.shards import merge_shards
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    sites = merge_shards(list(snakemake.input))
    write_sites(snakemake.output[0], sites)
    lang, n_shards = snakemake.wildcards.lang, len(snakemake.input)
    log.info("%s: %d tokens from %d shards", lang, sites["mlp"].n_tokens, n_shards)
