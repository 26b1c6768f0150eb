"""The batch pipeline's parts that every engine shares.

`compose` turns a batch of decoded pages into manifest rows (classify, restore, caption, read),
`outputs` writes an item's files as it finishes and the run's manifest and report at the end,
`report` is the HTML report, `provenance` the settings and models behind the rows, and
`microbatch` gathers the service's concurrent requests into shared batches.
"""
