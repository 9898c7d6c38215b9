"""viterbisample: exact, fast Unigram tokenization.

Viterbi decoding and perfect sampling (subword regularization) over one lattice, on Numba
kernels.  See ``Tokenizer`` for the API.
"""

from . import kernel_cache  # noqa: F401  (first: it decides where kernels are cached)
from .loader import SubwordRegularization
from .model import Model
from .tokenizer import Tokenizer
from .train import train

__version__ = "0.1.0"
__all__ = ["Model", "SubwordRegularization", "Tokenizer", "train", "__version__"]
