"""Evaluation stage: answers, judges, win rates, welfare and preference accuracy."""
