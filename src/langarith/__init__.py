"""langarith: find and steer the language-specific neurons of a large language model."""

__version__ = "0.1.0"
