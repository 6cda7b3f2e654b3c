"""The score stage: open_clip similarity and embeddings, fasttext language ID, as a Ray pipeline."""
