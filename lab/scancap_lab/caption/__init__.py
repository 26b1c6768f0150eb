"""The lab's side of scancap.caption: what measures it and writes its reports."""
