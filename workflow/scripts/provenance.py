from pathlib import Path

from langarith.io.provenance import collect, write_provenance
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    from langarith.model.dtypes import dtype_choice  # torch: after job_logging took its GPUs
    from langarith.model.loading import placement_device

    scriptdir = getattr(snakemake, "scriptdir", None)  # workflow/scripts of the repository
    model = snakemake.params.model
    setting = model.get("dtype", "float32")
    resolved, why = dtype_choice(setting, placement_device(device_map=model.get("device_map")))
    record = collect(
        model=snakemake.wildcards.model,
        model_dir=snakemake.input.model,
        model_config=model,
        config=snakemake.params.config,
        repo=Path(scriptdir).resolve().parents[1] if scriptdir else None,
        dtype={"setting": setting, "resolved": resolved, "why": why},
    )
    write_provenance(record, snakemake.output[0])
    log.info("config sha256 %s", record["config_sha256"])
    log.info("model dtype %s resolves to %s here (%s)", setting, resolved, why)
