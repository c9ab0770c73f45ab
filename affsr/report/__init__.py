"""What the study says: the metric tables, the paper's claims with computed verdicts, the README's
generated blocks, provenance and the figures (:mod:`affsr.report.plots`).
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "summary_table": "tables",
    "markdown_table": "tables",
    "summary_markdown": "tables",
    "metrics_tree": "tables",
    "read_metrics": "tables",
    "claims_table": "claims",
    "claims_markdown": "claims",
    "published_blocks": "readme_blocks",
    "check_readme": "readme_blocks",
    "publish": "readme_blocks",
    "write_provenance": "provenance",
    "DISPLAY_NAMES": "display_names",
    "display_name": "display_names",
})
