"""Studies: one package per study (its claims, verdicts and documents) built on the toolkit."""
