"""The validation suite (the seed's A27 validator): eight checks of a migrated target.

``runner.run_validation`` reads the source and the target once, page by page,
predicts what the target must hold through the migration's own Transformer, runs
the eight checks (one module each) and renders the reports.
"""
