"""Cluster analysis of a cover index: which genres have a look of their own, and which blur together.

``analyze`` (in :mod:`analysis.run`) is the entry point used by ``sleeve analyze``; the modules beside it
each do one step: reduce (UMAP), cluster (HDBSCAN), covermap (the two together), cache (fitted layouts and
decoded covers per index generation), separability (the numbers), classifier_metrics (recall from sleeve
evaluate), profiles (what each cluster holds), narrative (the sentences), traits and thumbnails (what the covers
look like), report (the interactive HTML page) and scatter_png (the static picture).
"""
