# langarith: find and steer the language-specific neurons of a large language model.
#
#   snakemake --cores all --resources gpu=1        # the default config, offline on a CPU
#   snakemake --cores all --resources gpu=4 --configfile config/paper.yaml
#
# A --configfile replaces the default config instead of being merged into it (a merge would
# add the default model, conditions and selections to every other config's run);
# --config key=value still overrides single keys of whichever config is in use.

if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/common_tasks.smk"
include: "workflow/rules/common_analysis.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/neurons.smk"
include: "workflow/rules/forcing.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/fallback.smk"
include: "workflow/rules/pack.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/quality.smk"
include: "workflow/rules/provenance.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
