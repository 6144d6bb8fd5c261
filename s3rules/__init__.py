"""s3rules: Make-style rules over S3 targets, filled from a sample sheet; runs only what is missing."""

__version__ = "0.1.0"
