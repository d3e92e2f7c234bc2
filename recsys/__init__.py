"""sleeve: embed album covers, find look-alikes, classify genres and analyse clusters."""

__version__ = "0.1.0"
