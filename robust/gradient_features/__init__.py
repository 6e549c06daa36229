"""Seed 001's study (Kwon et al., ICIP 2019): backpropagated-gradient features of a VAE
trained on clean images. :mod:`~robust.gradient_features.features` extracts per-sample
gradients and activations (the ``gradients`` stage), :mod:`~robust.gradient_features.detectors`
trains and scores the two distortion detectors (``detect``), and
:mod:`robust.gradient_features.iqa` is the second application, the gradient image-quality index
against UNIQUE (``iqa-autoencoder``, ``iqa``). The VAE itself is a model
(:mod:`robust.models.gradient_vae`) trained by a method (:mod:`robust.methods.vae`)."""
