"""The lab's side of scancap.restore: what measures it and writes its reports."""
