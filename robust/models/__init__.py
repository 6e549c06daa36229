"""The model registry: ``create(name, num_classes, image_size=..., pretrained=..., **options)``.

Families register themselves when imported; the torchvision-based ones
(:mod:`robust.models.torchvision_nets`) are imported on first use, since importing torchvision
costs about 1.3 s of every stage's start-up.
"""

from robust.models import gradient_vae, resnet_generator, small_nets, srresnet  # noqa: F401  (they register themselves)
from robust.models.registry import Classifier, available, create, load_weights, register, register_family

register_family("robust.models.torchvision_nets", "resnet18", "resnet50", "densenet121", "vgg16_bn", "squeezenet1_1", "alexnet",
                *(f"efficientnet_b{i}" for i in range(5)))

__all__ = ["Classifier", "available", "create", "load_weights", "register", "register_family"]
