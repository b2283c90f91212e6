"""The one ``geovr`` console script.

Each stage owns a thin typer module (``<stage>/cli.py``) that imports nothing heavy at module
level; torch, transformers and deepspeed are imported inside command bodies so ``geovr --help``
stays fast.
"""

from pathlib import Path

import typer

from geovr.corpora.cli import app as corpus_app
from geovr.evaluate.cli import app as eval_app
from geovr.extract.cli import extract
from geovr.shared.cli import app as shards_app
from geovr.synth.cli import synth
from geovr.train.cli import train

app = typer.Typer(
    name="geovr",
    help="Distil a 3D foundation model into a multimodal LLM from plain 2D video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("synth", help="Render a synthetic indoor corpus with exact ground truth (mp4 + poses + depth).")(synth)
app.command("extract", help="Stage one: run the teacher over a video corpus and cache its targets in shards.")(
    extract
)
app.command("train", help="Stage two: train the student MLLM against cached targets under DeepSpeed ZeRO.")(train)
app.add_typer(eval_app, name="eval", help="Score spatial reasoning (VSI-Bench format) and geometry heads.")
app.add_typer(shards_app, name="shards", help="Inspect, verify, merge, publish and pull target stores.")
app.add_typer(corpus_app, name="corpus", help="Bring real data in: instruction files and posed RGB-D scans -> corpus manifest.")


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("geovr_demo"), help="Output folder for every artefact of the demo."),
    train_steps: int = typer.Option(20, help="Training steps of the tiny student."),
) -> None:
    """Run the whole pipeline on the built-in synthetic default (CPU, tiny models)."""
    from geovr.demo import run_demo

    run_demo(out, train_steps)
