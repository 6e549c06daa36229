"""The model registry: ``create(name, num_classes, image_size=..., pretrained=..., **options)``."""

from robust.models import gradient_vae, resnet_generator, small_nets, srresnet, torchvision_nets  # noqa: F401  (they register themselves)
from robust.models.registry import Classifier, available, create, load_weights, register

__all__ = ["Classifier", "available", "create", "load_weights", "register"]
