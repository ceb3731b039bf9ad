"""nlp-transfer: transfer learning for NLP from one YAML recipe."""

__version__ = "0.1.0"
