"""snapshot: logical and physical snapshots of the source, their manifest, restore,
retention and source repair. It imports ``run`` and ``io``, never ``migrate``
(the two are siblings).
"""
