"""Evaluation: genzoo's evaluator network, sample and reconstruction metrics, likelihood estimators."""
