from langarith.experiments.tasks.run import run_task_job
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    frame = run_task_job(
        model_dir=snakemake.input.model,
        model_options=snakemake.params.model,
        settings=snakemake.params.settings,
        condition=snakemake.wildcards.condition,
        steps=snakemake.params.steps,
        languages=snakemake.params.languages,
        activation_files=list(snakemake.input.get("activations", [])),
        neurons=snakemake.input.get("neurons"),
        summary=snakemake.input.get("summary"),
        output=snakemake.output[0],
        calibration=snakemake.input.get("calibration"),
    )
    log.info(
        "%s/%s: %d generations",
        snakemake.wildcards.task,
        snakemake.wildcards.condition,
        frame.height,
    )
