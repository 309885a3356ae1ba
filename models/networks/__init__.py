"""Reference networks, each written from its paper's description.

ImageNet: GhostNet 1.0x, GhostNetV2 1.0x, RepGhostNet 1.0x (deployed), ResNet-18/50,
MobileNetV2 1.0, EfficientNet-B0 and TinyNet-A..E, AdderNet ResNet-50, and the binary Bi-Real
Net 18 and ReActNet-A; CIFAR-10: ResNet-20, AdderNet ResNet-20, VGG-Small; super-resolution:
EDSR-baseline; scikit-learn digits: a small CNN. :mod:`models.registry` names them with their
input shapes and published costs; :mod:`models.networks.blocks` holds the blocks they share.
"""
