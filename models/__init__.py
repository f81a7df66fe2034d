"""Model metadata files (JSON), shipped as package data."""
