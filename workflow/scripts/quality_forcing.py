from langarith.experiments.quality import run_quality_job
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    q = snakemake.params.quality
    frame = run_quality_job(
        langid_file=snakemake.input.langid,
        output=snakemake.output[0],
        ngram=q["ngram"],
        max_period=q["max_period"],
        model_dir=snakemake.input.get("model"),
        model_options=snakemake.params.model,
        batch_size=q["batch_size"],
        perplexity=q["perplexity"],
        relevance=q.get("relevance"),
        reference_file=snakemake.input.get("reference"),
        threads=snakemake.threads,
    )
    log.info("%d outputs, mean repetition %.3f", len(frame), frame["repetition"].mean() or 0)
    if "relevance" in frame.columns:
        log.info("mean relevance %.3f", frame["relevance"].mean() or 0)
