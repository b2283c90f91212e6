"""geovr: distil a 3D foundation model into multimodal LLMs from plain 2D video.

Subpackages: ``geovr.shared`` (schema, stores, manifests, geometry, frame sampling),
``geovr.synth`` (synthetic corpus with ground truth), ``geovr.extract`` (stage one, the
teacher pass), ``geovr.train`` (stage two, the student under DeepSpeed) and
``geovr.evaluate`` (benchmarks and geometry metrics).
"""

__version__ = "0.1.0"
