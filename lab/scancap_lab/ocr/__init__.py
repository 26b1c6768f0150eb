"""The lab's side of scancap.ocr: what measures it and writes its reports."""
