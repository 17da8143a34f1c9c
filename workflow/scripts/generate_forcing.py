from langarith.experiments.forcing import run_forcing_job
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus):
    run_forcing_job(
        model_dir=snakemake.input.model,
        model_options=snakemake.params.model,
        questions=snakemake.input.questions,
        activation_files=list(snakemake.input.activations),
        neurons=snakemake.input.get("neurons"),
        summary=snakemake.input.get("summary"),
        condition=snakemake.wildcards.condition,
        steps=snakemake.params.steps,
        languages=snakemake.params.languages,
        sources=snakemake.params.sources,
        targets=snakemake.params.targets,
        generation=snakemake.params.generation,
        output=snakemake.output[0],
        calibration=snakemake.input.get("calibration"),
        instructions=snakemake.input.get("instructions"),
        layer_sweep=snakemake.input.get("layer_sweep"),
    )
