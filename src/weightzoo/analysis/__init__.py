"""Code that computes: features of weights, statistics of the paper's claims, predictors."""
