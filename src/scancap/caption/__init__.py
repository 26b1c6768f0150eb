"""Captioning: a Show, Attend and Tell decoder on the MobileNetV2 grid, decoded by beam search.

The product runs `model.Captioner` (`Captioner.load().caption_images(images)`); `files`
captions pages read from files, `assess` (with `metrics`) scores captions against a person's
references; `data` streams Flickr8k, `train` and `scst` reproduce the shipped decoders. The
command line (`scancap.cli`) calls them; `reports/captioning.md` is the lab's.
"""
