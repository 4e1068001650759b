"""The paper's six-step parallel-data pipeline (§3.1): unify, clean, deduplicate, language ID, quality
filter, instruction format. ``xplus-data run pipeline.yaml`` runs it; see ``runner`` for the on-disk layout.
"""
