"""The shard stage: reshard the selection into training-ready webdataset shards with a manifest."""
