"""Paths on local disk or any fsspec URL, atomic writes, stage folders and their markers."""
