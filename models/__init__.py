"""Model metadata (JSON), the MusiCNN checkpoints and their licence: package data."""
