from langarith.io.pack import export_pack
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    meta = export_pack(
        neurons_parquet=snakemake.input.neurons,
        summary_json=snakemake.input.summary,
        activation_files=list(snakemake.input.activations),
        languages=snakemake.params.languages,
        out_dir=snakemake.output[0],
        metadata=snakemake.params.metadata,
        calibration_json=snakemake.input.get("calibration"),
    )
    log.info("pack of %d neurons: %s", meta["n_union"], meta["neurons_per_language"])
