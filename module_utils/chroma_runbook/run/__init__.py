"""run: one run of the runbook, as the roles see it.

Run state and summary, the run lock, the names the engine gives things (staging
collections, checkpoint and freeze files), the run's view of its target, templating,
app settings, probes and notifications. It imports only ``io``.
"""
