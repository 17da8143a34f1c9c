import polars as pl

from langarith.experiments.native import run_native_job
from langarith.figures.steering import plot_native
from langarith.workflow.jobs import job_logging

gpus = snakemake.resources.get("gpu", 0)  # the rule's `gpu` resource, as scheduled
with job_logging(snakemake.log[0], threads=snakemake.threads, gpus=gpus) as log:
    p = snakemake.params
    scores = run_native_job(
        model_dir=snakemake.input.model,
        model_options=p.model,
        questions=snakemake.input.questions,
        languages=p.languages,
        generation=p.generation,
        langid_model=p.langid_model,
        ngram=p.judging["ngram"],
        max_repetition=p.judging["max_repetition"],
        output_table=snakemake.output.outputs,
        output_scores=snakemake.output.scores,
    )
    plot_native(scores, f"{snakemake.wildcards.model}: native prompting", snakemake.output.figure)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200):
        log.info("answers in the prompt's language, per language:\n%s", scores)
