"""Unlabelled domain adaptation: continued pre-training on target text, supervised fine-tuning on the labelled
source, self-training on the target, chained as stages (chain.py) and compared in one table (`nlp-transfer adapt`)."""
