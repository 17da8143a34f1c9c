"""The paper's findings, measured: one idea per module. The selection they read is
:class:`langarith.core.selection.NeuronSet`; their figures are in :mod:`langarith.figures.neurons`
and their settings in :mod:`langarith.workflow.settings.analysis`.

* :mod:`~langarith.analysis.counts` — neurons per language and layer, depth profile, sharing
* :mod:`~langarith.analysis.overlap` — the language × language overlap matrix
* :mod:`~langarith.analysis.script_groups` — Latin- vs non-Latin-script languages
* :mod:`~langarith.analysis.findings` — a claim, its verdict, the findings table
* :mod:`~langarith.analysis.claims` — each claim of the paper as a measurable quantity
* :mod:`~langarith.analysis.assemble` — the findings of one model from the pipeline's outputs
"""
