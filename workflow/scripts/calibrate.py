from langarith.experiments.calibration import run_calibration_job
from langarith.figures.steering import plot_calibration
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    p, wc = snakemake.params, snakemake.wildcards
    result = run_calibration_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        questions=snakemake.input.questions,
        activation_files=list(snakemake.input.activations),
        neurons=snakemake.input.neurons,
        summary=snakemake.input.summary,
        condition=p.calibration["condition"],
        steps=p.steps,
        languages=p.languages,
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
