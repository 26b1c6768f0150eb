"""scancap's lab: the experiments, benchmarks and report writers beside the product.

It imports scancap and is never imported by it. It knows the repository's layout (where the
reports, labels and samples are committed, and the datasets beside the checkout); the product
knows only its settings, which importing the lab points at that layout where they are unset.
"""

from scancap_lab import paths

paths.use_the_repository_layout()
