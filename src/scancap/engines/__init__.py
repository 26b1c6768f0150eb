"""The engines: what runs a batch of pages through the item composition into OUT.

Each engine is one module with one function of the same signature,
`run(inputs, out, config, models=None, *, force=False, progress=True) -> RunSummary`:
`local` (this process, resumable through an SQLite ledger) and `ray` (Ray Data over a
cluster, resumable through Parquet parts; it also takes the cluster's `address`). Both plan
the run the same way (`plan`), compose each item with `scancap.pipeline.compose.Pipeline` and
write its outputs with `scancap.pipeline.outputs`, so they give the same manifest and report.
"""
