"""The paper's findings, measured (issue 7): one idea per module.

* :mod:`~langarith.analysis.selection` — a neuron selection as a table of (language, layer, neuron)
* :mod:`~langarith.analysis.counts` — neurons per language and layer, depth profile, sharing
* :mod:`~langarith.analysis.overlap` — the language × language overlap matrix
* :mod:`~langarith.analysis.script_groups` — Latin- vs non-Latin-script languages
* :mod:`~langarith.figures.neurons` — the figures of the neuron analyses
* :mod:`~langarith.analysis.findings` — a claim, its verdict, the findings table
* :mod:`~langarith.analysis.claims` — each claim of the paper as a measurable quantity
* :mod:`~langarith.workflow.settings.analysis` — defaults of the ``analysis`` config section
"""
