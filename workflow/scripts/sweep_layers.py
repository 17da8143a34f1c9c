from langarith.experiments.layer_sweep import run_layer_sweep_job
from langarith.experiments.steered_job import read_steered_job
from langarith.figures.steering import plot_layer_sweep
from langarith.workflow.jobs import job_logging, steering_files

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    p, wc = snakemake.params, snakemake.wildcards
    job = read_steered_job(
        wc.condition,
        p.steps,
        steering_files(snakemake.input),
        p.languages,
        with_layer=False,  # the sweep sets the layer itself
    )
    result = run_layer_sweep_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        questions=snakemake.input.questions,
        job=job,
        settings=p.sweep,
        langid_model=p.langid_model,
        output_json=snakemake.output.json,
        output_table=snakemake.output.table,
        meta={"model": wc.model, "selection": wc.selection},
        instructions=snakemake.input.get("instructions"),
    )
    title = f"{wc.model} · {wc.condition}: layer sweep"
    plot_layer_sweep(result, title, snakemake.output.figure)
    log.info("chosen layer: %d", result["best_layer"])
