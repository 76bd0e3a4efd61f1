"""migrate: copying collections from the source to the target.

Options, the scan, export, transform (profile, routing, record checks), spool,
staging, import, batch writer, verification, the checkpoint and the pre-copy.
It imports ``run`` and ``io``, never ``snapshot`` (the two are siblings).
"""
