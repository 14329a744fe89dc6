"""Code that computes (features, statistics, predictors); the code that draws lives in
:mod:`weightzoo.figures`."""
