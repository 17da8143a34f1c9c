from langarith.experiments.forcing import run_forcing_job
from langarith.experiments.steered_job import read_steered_job
from langarith.workflow.jobs import job_logging, steering_files

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus):
    p = snakemake.params
    job = read_steered_job(
        snakemake.wildcards.condition,
        p.steps,
        steering_files(snakemake.input),
        p.languages,
        p.targets,
    )
    run_forcing_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        questions=snakemake.input.questions,
        job=job,
        sources=p.sources,
        targets=p.targets,
        generation=p.generation,
        output=snakemake.output[0],
        instructions=snakemake.input.get("instructions"),
    )
