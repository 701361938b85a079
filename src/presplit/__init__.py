"""presplit: predictive host domain splitting.

The pipeline is observe -> forecast -> plan -> apply; see docs/architecture.md.
"""

__version__ = "0.1.0"
