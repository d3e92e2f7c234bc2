"""Cluster analysis of a cover index: which genres have a look of their own, and which blur together.

``analyze`` (in :mod:`analysis.run`) is the entry point used by ``sleeve analyze``; the modules beside it
each do one step: reduce (UMAP), cluster (HDBSCAN), covermap (the two together, fitted once and cached),
separability (the numbers), narrative (the sentences), traits and thumbnails (what the covers look like),
report (the interactive HTML page) and scatter_png (the static picture).
"""
