"""The dedup stage: exact duplicates by canonical URL and by image hash, on an engine."""
