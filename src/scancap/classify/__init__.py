"""Classification: photo or not, and the subtype of non-photos, on a frozen EfficientNet-Lite0.

The product runs `model.Classifier` (`Classifier.load().predict(images)`); `data` builds the
doctype datasets, `train` reproduces the shipped model, `evaluate` (with `metrics`, `figures`
and `speed`) writes `reports/classification.md`; `cli` registers the subcommands.
"""
