"""The lab's side of scancap.classify: what measures it and writes its reports."""
