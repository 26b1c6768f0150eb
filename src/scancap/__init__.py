"""scancap: sort, restore and caption scanned images."""

__version__ = "0.1.0"
