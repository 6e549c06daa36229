"""Seed 001's second application: full-reference image quality with UNIQUE's sparse autoencoder
(:mod:`~.autoencoder`, trained by :mod:`~.train`), the four indices PSNR / SSIM / UNIQUE /
gradient (:mod:`~.indices`), the databases TID2013 / LIVE-MD / CSV (:mod:`~.databases`), the
statistics (:mod:`~.scoring`) and the ``iqa`` stage with its pipeline set (:mod:`~.run`)."""
