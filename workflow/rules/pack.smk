# Steering packs: a selection and the statistics its interventions need, self-describing.


rule export_pack:
    input:
        unpack(pack_calibration_input),
        neurons="results/neurons/{model}/{selection}.parquet",
        summary="results/neurons/{model}/{selection}.json",
        activations=activation_files,
    output:
        directory("results/packs/{model}/{selection}"),
    log:
        "logs/export_pack/{model}/{selection}.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        languages=LANGUAGES,
        metadata=lambda wc: {
            "model": wc.model,
            "model_source": config["models"][wc.model]["source"],
            "selection": wc.selection,
        },
    script:
        "../scripts/export_pack.py"
