"""The lab's side of scancap.pipeline: what measures it and writes its reports."""
