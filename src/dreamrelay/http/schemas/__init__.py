"""Request and response models, one module per API format."""
