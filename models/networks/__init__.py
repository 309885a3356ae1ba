"""Reference networks, each written from its paper's description.

ImageNet: GhostNet 1.0x, ResNet-18/50, MobileNetV2 1.0, Bi-Real Net 18 (binary);
CIFAR-10: ResNet-20, VGG-Small; scikit-learn digits: a small CNN. :mod:`models.registry`
names them with their input shapes and published costs.
"""
