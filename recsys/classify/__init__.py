"""Genre classification of covers: leak-free splits, models on embeddings, a fine-tuned CNN, honest metrics.

Entry points: :func:`recsys.classify.evaluate.evaluate` (compare models), :func:`recsys.classify.train.train_classifier`
(store one beside an index), :func:`recsys.classify.predict.predict_cover` (use it) and
:mod:`recsys.classify.model_registry` (share versions of it through an MLflow model registry).
"""
