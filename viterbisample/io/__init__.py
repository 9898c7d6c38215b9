"""Files in and out: the model file (``model_file``), SentencePiece ``.model`` import
(``sentencepiece``), and output that appears whole or not at all (``atomic``)."""
