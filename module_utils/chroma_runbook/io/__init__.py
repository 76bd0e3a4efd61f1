"""io: the engine's bottom layer, talking to the world (Chroma servers, files, the clock).

Connections, the source readers, paging, retries, atomic files, the JSON log, records,
fingerprints of a server. It imports nothing else of the engine.
"""
