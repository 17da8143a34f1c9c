from langarith.io.activations import write_sites
from langarith.model.recording import record_corpus
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
shard, shards = snakemake.params.shard  # 1-based shard of the language's stream; [1, 1]: all of it
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    sites = record_corpus(
        model_dir=snakemake.input.model,
        corpus=snakemake.input.corpus,
        model_options=snakemake.params.model,
        recording=snakemake.params.recording,
        metadata={"model": snakemake.wildcards.model, "lang": snakemake.wildcards.lang},
        shard=shard,
        shards=shards,
    )
    write_sites(snakemake.output[0], sites)
    log.info("%s: %d tokens recorded", snakemake.wildcards.lang, sites["mlp"].n_tokens)
