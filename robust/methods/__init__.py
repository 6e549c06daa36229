"""One small module per method; the engine (:mod:`robust.engine`) runs their loops."""
