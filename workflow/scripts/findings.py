from langarith.analysis.assemble import run_findings_job
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    p = snakemake.params
    found = run_findings_job(
        model=snakemake.wildcards.model,
        selections=list(zip(p.selections, snakemake.input.neurons, snakemake.input.summaries)),
        forcing_scores=snakemake.input.forcing,
        task_scores=list(snakemake.input.get("tasks", [])),
        fallback=list(snakemake.input.get("fallback", [])),
        settings=p.settings,
        figures=p.figures,
        out_markdown=snakemake.output.markdown,
        out_parquet=snakemake.output.table,
        header=p.header,
    )
    for f in found:
        log.info("%s: %s (%s)", f.claim_id, f.verdict, f.measured)
