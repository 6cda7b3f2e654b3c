"""The select stage: registered policies decide which samples are kept, each rejection with a reason."""
