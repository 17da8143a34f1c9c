from langarith.corpora import write_corpus
from langarith.corpora.read import read_language
from langarith.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    lang = snakemake.wildcards.lang
    documents = read_language(snakemake.params.corpus, lang, dict(snakemake.input))
    log.info(
        "%s: %d documents, %d characters", lang, len(documents), sum(len(d.text) for d in documents)
    )
    write_corpus(documents, snakemake.output[0], source=f"{snakemake.wildcards.corpus}/{lang}")
