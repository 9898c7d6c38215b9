"""The Unigram lattice of a text, and every pass over it (ALGORITHMS.md sections 2-5).

Edges are never stored: each pass asks ``trie.prefix_matches`` (the one walk they all
share) for the pieces that end, or start, at each position.

* ``forward``: Viterbi, the exact samplers (linear and log domain), log Z, and the batch
  drivers that run them over packed texts;
* ``marginals``: forward-backward: edge marginals, expected piece counts (the trainer's
  E-step), expected length and entropy;
* ``topk``: the exact k best paths, and k samples without replacement.
"""

from .forward import (
    STATUS_BAD_PATH,
    VITERBI,
    alternative_items,
    backtrack,
    count_edges_items,
    encode_items,
    encode_text,
    linear_sample_pass,
    log_partition_items,
    match_buffers,
    ring_size,
    tempered_pass,
    text_model,
    text_room,
    viterbi_items,
    viterbi_pass,
    viterbi_text,
)

__all__ = [
    "STATUS_BAD_PATH", "VITERBI", "alternative_items", "backtrack", "count_edges_items", "encode_items",
    "linear_sample_pass", "log_partition_items", "match_buffers", "ring_size", "tempered_pass", "text_model", "text_room",
    "viterbi_items", "viterbi_pass", "viterbi_text",
]
