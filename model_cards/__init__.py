"""Model cards generated from the results that produced them, and the Hub publisher ``xplus-publish``.

Each input has one small reader, so a change of format touches one module:

- ``run_results``: an ``xplus-eval`` run folder (``run.json`` + ``scores.json``)
- ``training_recipe``: the trainer's provenance ``training.yaml``
- ``paper_results``: the paper's reported numbers, in the same shape as a run's scores
- ``benchmarks``: which benchmark a score belongs to, and its ``model-index`` entry
- ``card``: metadata (``ModelCardData``) + the Markdown template ``card_template.md.jinja``
- ``model_folder``: completeness, allow-list and secret checks of a model folder; the upload plan
- ``publish``: the push through ``huggingface_hub``; ``cli``: the ``xplus-publish`` command
"""
