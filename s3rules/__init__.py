"""s3rules: Make-style rules over S3 targets, filled from a sample sheet; runs only what is missing."""

__version__ = "0.1.0"


def __getattr__(name):
    # AWSBatchHelper imports boto3; load it only when asked for.
    if name == "AWSBatchHelper":
        from .api import AWSBatchHelper
        return AWSBatchHelper
    raise AttributeError(name)


__all__ = ["AWSBatchHelper", "__version__"]
