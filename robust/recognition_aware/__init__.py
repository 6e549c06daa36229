"""Seed 002's study (recognition-aware image processing): the tasks a processor restores
(:mod:`~robust.recognition_aware.tasks`: super-resolution, denoising, JPEG deblocking, PSNR /
SSIM) and the tables that score every trained processor on several recognisers
(:mod:`~robust.recognition_aware.tables`, the ``ra`` stage). The processors train through their
method (:mod:`robust.methods.ra`) and their models (:mod:`robust.models.srresnet`,
:mod:`robust.models.resnet_generator`)."""
