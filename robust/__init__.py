"""robust: a DVC pipeline that makes image classifiers robust to distortions and measures it."""

__version__ = "0.1.0"
