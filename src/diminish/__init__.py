"""diminish: reproduce and extend 'Diminishing Returns in Self-Supervised Learning'."""

__version__ = "0.1.0"
