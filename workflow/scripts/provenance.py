from pathlib import Path

from langarith.io.provenance import collect, write_provenance
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    scriptdir = getattr(snakemake, "scriptdir", None)  # workflow/scripts of the repository
    record = collect(
        model=snakemake.wildcards.model,
        model_dir=snakemake.input.model,
        model_config=snakemake.params.model,
        config=snakemake.params.config,
        repo=Path(scriptdir).resolve().parents[1] if scriptdir else None,
    )
    write_provenance(record, snakemake.output[0])
    log.info("config sha256 %s", record["config_sha256"])
