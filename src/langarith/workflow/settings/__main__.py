"""``python -m langarith.workflow.settings CONFIGFILE...``: every config check, no Snakemake."""

from langarith.workflow.settings import main

raise SystemExit(main())
