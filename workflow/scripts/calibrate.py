from langarith.experiments.calibration import run_calibration_job
from langarith.experiments.steered_job import read_steered_job
from langarith.figures.steering import plot_calibration
from langarith.workflow.jobs import job_logging, steering_files

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    p, wc = snakemake.params, snakemake.wildcards
    job = read_steered_job(
        p.calibration["condition"],
        p.steps,
        steering_files(snakemake.input),
        p.languages,
        always_read=True,
        with_alphas=False,  # the sweep sets α itself
    )
    result = run_calibration_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        questions=snakemake.input.questions,
        job=job,
        settings=p.calibration,
        generation=p.calibration["generation"],
        langid_model=p.langid_model,
        output_json=snakemake.output.json,
        output_table=snakemake.output.table,
        meta={"model": wc.model, "selection": wc.selection},
    )
    title = f"{wc.model} · {wc.selection} · {p.calibration['condition']}: calibration of α"
    plot_calibration(result, title, snakemake.output.figure)
    log.info("chosen α: %s", {t: v["alpha"] for t, v in result["targets"].items()})
