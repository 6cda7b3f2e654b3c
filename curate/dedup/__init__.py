"""The dedup stage: safety hash lists, eval-set decontamination, placeholders, exact and near duplicates."""
