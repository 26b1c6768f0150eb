"""Captioning: a Show, Attend and Tell decoder on the MobileNetV2 grid, decoded by beam search.

The product runs `model.Captioner` (`Captioner.load().caption_images(images)`); `data` streams
Flickr8k, `train` and `scst` reproduce the shipped decoders, `evaluate` (with `metrics` and
`figures`) writes `reports/captioning.md`; `cli` registers the subcommands.
"""
