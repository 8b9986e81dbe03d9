"""Loading registered models safely and running them: formats, cache, predictors."""
