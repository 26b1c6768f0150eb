"""Stage 4: the text of text pages, read by Tesseract 5 (see `engine`)."""
