"""The living documentation: the specification (features/) as a browsable HTML folder, before or after a run.

``-D report=html`` writes it (support/run/reports.py): an index of the features in story order (their file
paths) with counts, a page per feature with its scenarios folded, an owner's view and a developer's view, and
the contract promises each scenario proves (docs/contract-map.toml). See the README, "Reports".
"""
