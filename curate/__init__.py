"""curate: turn web-scale image-text pools into curated CLIP training sets."""
