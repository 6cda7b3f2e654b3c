"""Model wrappers: the one place curate loads open_clip (and fasttext) models."""
