from langarith.io.corpora import write_corpus
from langarith.io.corpora.read import read_language
from langarith.workflow.jobs import job_logging

with job_logging(snakemake.log[0]) as log:
    lang = snakemake.wildcards.lang
    fetched = read_language(snakemake.params.corpus, lang, dict(snakemake.input))
    documents = fetched.documents
    log.info(
        "%s: %d documents, %d characters%s",
        lang,
        len(documents),
        sum(len(d.text) for d in documents),
        f" (stopped at {fetched.cut_by})" if fetched.cut_by else "",
    )
    write_corpus(
        documents,
        snakemake.output[0],
        source=f"{snakemake.wildcards.corpus}/{lang}",
        cut_by=fetched.cut_by,
    )
