from langarith.experiments.fallback import run_fallback_job
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    frame = run_fallback_job(
        model_dir=snakemake.input.model,
        model_options=snakemake.params.model,
        neurons=snakemake.input.neurons,
        summary=snakemake.input.summary,
        prompts=snakemake.input.prompts,
        settings=snakemake.params.settings,
        output=snakemake.output[0],
    )
    log.info("%d generations", frame.height)
