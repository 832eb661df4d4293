"""tuilab: a terminal RLHF lab."""

__version__ = "0.1.0"
