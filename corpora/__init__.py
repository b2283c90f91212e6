"""Real corpora in (``geovr corpus ...``): instruction data -> corpus manifest, posed RGB-D scans -> ground truth.

- :mod:`.ids`           stable, collision-free clip ids from a video's path relative to the video root
- :mod:`.instructions`  LLaVA-style instruction files (VSI-590K JSONL, VLM-3R JSON): read, resolve, rewrite
- :mod:`.from_instructions` the ``geovr corpus from-instructions`` job (manifest, missing report, summary)
- :mod:`.scans`         the ground-truth folder writer shared by the scan importers (mp4 + ``.npy``)
- :mod:`.scannet`, :mod:`.arkitscenes` importers of each dataset's exported frames

Conventions and their sources: ``docs/corpora.md``. This package imports ``geovr.shared`` and
``geovr.extract`` (video probing, the ``--plan`` estimate); nothing imports it but the CLI.
"""
