"""The nightly job: when it runs (scheduler, APScheduler) and what it does (nightly)."""
