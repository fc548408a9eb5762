"""Novelty scoring, SFT example generation, dataset export, evaluation, the nightly job.

Empty until the dataset issue lands; the corpus already has the `scores` and `runs` tables.
"""
