"""Unigram vocabulary training.  ``seeds``: frequent-substring seed vocabularies."""
