"""The batch pipeline: classify, restore photos, caption them; write outputs, manifest, report.

`run.Pipeline` analyses one image at a time and `run.run` a whole batch, resumable through
`ledger`; `report` writes the HTML report, `bench` measures throughput and memory.
"""
