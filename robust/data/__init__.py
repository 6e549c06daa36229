"""Datasets: sources in their own formats (``sources``), shard writing (``shards``),
the ``prepare`` stage (``prepare``) and reading shards back (``loader``, needs torch)."""
