"""The download stage: img2dataset under an engine, behind an address guard, normalised per shard."""
