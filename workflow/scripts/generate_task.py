from langarith.experiments.steered_job import read_steered_job
from langarith.experiments.tasks.run import run_task_job
from langarith.workflow.jobs import job_logging, steering_files

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    p, wc = snakemake.params, snakemake.wildcards
    job = read_steered_job(
        wc.condition,
        p.steps,
        steering_files(snakemake.input),
        p.languages,
        p.settings["steer_langs"],  # a calibrated condition's α per steered language
    )
    frame = run_task_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        settings=p.settings,
        job=job,
        output=snakemake.output[0],
    )
    log.info("%s/%s: %d generations", wc.task, wc.condition, frame.height)
