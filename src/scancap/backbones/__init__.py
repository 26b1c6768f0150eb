"""Pretrained ImageNet backbones, rebuilt in Keras from PyTorch checkpoints read without torch.

`mobilenet_v2.load_backbone` (the captioner's encoder), `efficientnet_lite.load_lite0` (the
classifier's), `inputs.to_model_input` (what both expect) and `torch_checkpoint` (the reader).
"""
