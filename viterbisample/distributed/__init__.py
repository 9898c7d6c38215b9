"""Encoding a corpus on a Dask cluster: ``encode_corpus`` (see ``corpus.py``); training a
vocabulary on one: ``train`` (``train.py``).

``blocks.py`` cuts the input into byte blocks at line ends and counts their documents;
``shards.py`` turns one block into one token file with the single-process writer;
``workers.py`` prepares the workers (the model shipped once, kernels compiled, threads
capped); ``corpus.py`` is the driver.  Dask (``pip install "viterbisample[dask]"``) is
imported only when a cluster is used.
"""

from .blocks import input_files
from .corpus import cluster_client, encode_corpus
from .train import train

__all__ = ["cluster_client", "encode_corpus", "input_files", "train"]
