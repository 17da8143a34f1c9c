from langarith.experiments.logit_lens import run_logit_lens_job
from langarith.experiments.steered_job import read_steered_job
from langarith.figures.steering import plot_logit_lens
from langarith.workflow.jobs import job_logging, steering_files

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus):
    p, wc = snakemake.params, snakemake.wildcards
    job = read_steered_job(
        wc.condition,
        p.steps,
        steering_files(snakemake.input),
        p.languages,
        p.lens["targets"],  # a calibrated condition's α per target
        always_read=True,
    )
    lens = run_logit_lens_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        questions=snakemake.input.questions,
        job=job,
        sources=p.lens["sources"],
        targets=p.lens["targets"],
        top_k=p.lens["top_k"],
        batch_size=p.lens["batch_size"],
        langid_model=p.langid_model,
        output=snakemake.output.table,
    )
    title = f"{wc.model} · {wc.selection} · {wc.condition}: logit lens (top {p.lens['top_k']})"
    plot_logit_lens(lens, title, snakemake.output.figure)
