"""robust: a DVC pipeline that makes image classifiers robust to distortions and measures it.

Importing any part of the package first pins the numerics (:mod:`robust.numerics`): library
code paths, thread count and versions, so every stage and command computes the same bytes.
"""

from robust.numerics import pin as _pin

__version__ = "0.1.0"

_pin()
