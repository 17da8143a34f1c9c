rule select_neurons:
    input:
        activation_files,
    output:
        neurons="results/neurons/{model}/{selection}.parquet",
        masks="results/neurons/{model}/{selection}.pt",
        summary="results/neurons/{model}/{selection}.json",
    log:
        "logs/select_neurons/{model}/{selection}.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        languages=LANGUAGES,
        selection=lambda wc: config["selections"][wc.selection],
    script:
        "../scripts/select_neurons.py"
