"""The Docker backend: servings as TensorFlow Serving containers on one Docker engine."""
