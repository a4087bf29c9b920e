"""ibab/tensorflow-wavenet's WaveNet: the original (``original/``) and its port (``port/``)."""
