"""The one ``geovr`` console script, and the one place where errors become exit codes.

Each stage owns a thin typer module (``<stage>/cli.py``) that imports nothing heavy at module
level; torch, transformers, deepspeed and numpy are imported inside command bodies so
``geovr --help`` stays fast (a test checks that it imports no numpy).

Exit codes (all commands): 0 success; 1 some clips/items failed; 2 bad usage (flags, config,
manifest, missing user-named inputs, unknown names, a store whose sampling does not match the
recipe); 3 environment (missing optional package, hub unreachable offline, disk full); 4 store or
data integrity (an untrusted store refused). :func:`main` maps exceptions to these codes by type
(:func:`exit_code_for`) and prints one line ``error: ...`` on stderr; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import typer
import typer.core

try:  # typer >= 0.2x vendors click; older typer uses click itself
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc

from geovr import __version__
from geovr.corpora.cli import app as corpus_app
from geovr.evaluate.cli import app as eval_app
from geovr.extract.cli import extract
from geovr.shared.cli import app as shards_app
from geovr.shared.errors import EnvironmentProblem, UsageError
from geovr.synth.cli import synth
from geovr.train.cli import train


class _MappedGroup(typer.core.TyperGroup):
    """The root group: an expected failure of any command prints one line ``error: ...`` and exits with its code
    (see :func:`exit_code_for`), also when the app runs in click's standalone mode (``app()``, ``CliRunner``)."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        try:
            return super().invoke(ctx)
        except (click_exc.ClickException, typer.Exit, typer.Abort):
            raise
        except Exception as e:
            code = exit_code_for(e)
            if code is None:
                raise
            typer.echo(f"error: {_message(e)}", err=True)
            raise typer.Exit(code) from e


app = typer.Typer(
    name="geovr",
    cls=_MappedGroup,
    help="Distil a 3D foundation model into a multimodal LLM from plain 2D video.\n\n"
    "Exit codes: 0 success; 1 some clips/items failed; 2 bad usage; 3 environment "
    "(missing package, offline hub, disk full); 4 store integrity.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geovr {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Distil a 3D foundation model into a multimodal LLM from plain 2D video."""


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


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of an expected failure, or None for a bug (which keeps its traceback).

    An exception class may carry its own ``exit_code`` attribute (``geovr.shared.errors``); the
    table below covers the library and third-party types that have none.
    """
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int) and not isinstance(exc, typer.Exit):
        return code
    if isinstance(exc, click_exc.UsageError):  # bad flags, missing options, BadParameter
        return 2
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return 3
    if isinstance(exc, ModuleNotFoundError) and not (exc.name or "").startswith("geovr"):
        return 3
    if "geovr.shared.safety" in sys.modules:  # only a store read can have raised these
        from geovr.shared.safety import IncompatibleStoreError, NotFinalizedError, StoreError

        if isinstance(exc, (NotFinalizedError, IncompatibleStoreError)):
            return 2  # the user named a folder that is no finalised store, or stores that do not go together
        if isinstance(exc, StoreError):
            return 4
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, click_exc.UsageError):
        msg = exc.format_message()
        if exc.ctx is not None:
            msg = f"{exc.ctx.command_path}: {msg}"
    elif isinstance(exc, ModuleNotFoundError):
        msg = f"{exc} (is the optional dependency installed?)"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())  # one line


def main(argv: list[str] | None = None) -> int:
    """Run ``geovr`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        rc = app(args=argv, prog_name="geovr", standalone_mode=False)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:
        code = exit_code_for(e)
        if code is None:
            raise
        typer.echo(f"error: {_message(e)}", err=True)
        return code
    return rc if isinstance(rc, int) else 0


__all__ = ["EnvironmentProblem", "UsageError", "app", "exit_code_for", "main"]
