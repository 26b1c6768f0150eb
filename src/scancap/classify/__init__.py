"""Classification: photo or not, and the subtype of non-photos, on a frozen EfficientNet-Lite0.

The product runs `model.Classifier` (`Classifier.load().predict(images)`); `files` classifies
pages read from files, `assess` (with `metrics`) measures the classifier on a person's labelled
images; `data` builds the doctype datasets and `train` reproduces the shipped model. The
command line (`scancap.cli`) calls them; `reports/classification.md` is the lab's.
"""
