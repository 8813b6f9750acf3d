"""The front doors beside the language server on the command line: `cromwell edit`, `complete`,
`screenshot` and `apply`, on the same domain functions the language server and the HTTP
server use."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cromwell_cli.options import with_options

# Exit codes: 0 done; 1 error (model unavailable, unreadable file...); 2 bad usage;
# 3 no safe edit (the diff does not apply, the model's answer is not an edit);
# 4 a file changed on disk since it was read (nothing was written).
EXIT_NO_EDIT = 3
EXIT_CHANGED = 4


class DoorError(click.ClickException):
    """A ClickException with its own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _door_error(err: Exception) -> click.ClickException:
    from cromwell_lsp.apply import FileChanged
    from cromwell_lsp.domain import RequestError
    from cromwell_lsp.patches import PatchError

    if isinstance(err, FileChanged):
        return DoorError(str(err), EXIT_CHANGED)
    if isinstance(err, PatchError):
        return DoorError(f"no edit: {err}", EXIT_NO_EDIT)
    if isinstance(err, RequestError):
        return DoorError(str(err), 2)
    return click.ClickException(f"{type(err).__name__}: {err}")


def _lines_option(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        a, _, b = value.partition(":")
        return int(a), int(b or a)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected A:B (1-based line numbers)",
                                 param_hint="'--lines'") from None


def _file_text(file: Path) -> str:
    """FILE's text as the request will read it (a refused file is a one-line error)."""
    from cromwell_lsp.domain import MAX_FILE_BYTES
    from cromwell_lsp.workspace import FileRefused, read_text

    try:
        return read_text(file, MAX_FILE_BYTES)[0]
    except FileRefused as err:
        raise click.ClickException(str(err)) from None


def _check_cursor(file: Path, line: int, column: int) -> None:
    """The cursor checked against FILE before any model loads, the message in the user's
    1-based numbers and naming the flag to change."""
    from engine.runtime.prompt_window import Cursor

    try:
        Cursor.at(_file_text(file), line - 1, column - 1)
    except ValueError as err:
        flag = "--line" if str(err).startswith("line") else "--column"
        raise click.BadParameter(str(err), param_hint=f"'{flag}'") from None


def _check_region(file: Path, region: tuple[int, int] | None) -> None:
    """--lines checked against FILE before any model loads."""
    from cromwell_lsp.domain import RequestError, line_range

    try:
        line_range(_file_text(file), region)
    except RequestError as err:
        raise click.BadParameter(str(err), param_hint="'--lines'") from None


class _Progress:
    """A spinner on stderr counting generated tokens (silent when stderr is no terminal)."""

    def __init__(self, label: str) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.label = label
        self.tokens = 0
        self.status = self.console.status(label)

    def __enter__(self) -> _Progress:
        self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.__exit__(None, None, None)

    def piece(self, _: str) -> None:
        self.tokens += 1
        self.status.update(f"{self.label}: {self.tokens} tokens")


_with_model_options = with_options([
    click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
                 default=None, help="A GGUF file (default: the embedded default model)."),
    click.option("--threads", default=None, type=click.IntRange(min=1),
                 help="Kernel threads (default: all cores)."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object for programs."),
])


@click.command("edit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--instruction", "-i", required=True, help="What to change.")
@click.option("--lines", "lines", default=None, help="The region to rewrite, A:B (1-based, "
              "inclusive; default: the whole file).")
@click.option("--apply", "do_apply", is_flag=True, help="Write the edit to the file.")
@click.option("--backup", is_flag=True, help="With --apply: keep the original as FILE.orig.")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Workspace folder for related files (default: the git "
              "repository, else the file's folder).")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(min=1),
              help="Most tokens of the model's answer.")
@_with_model_options
def edit_command(file: Path, instruction: str, lines: str | None, do_apply: bool, backup: bool,
                 root: Path | None, max_tokens: int, model_path: str | None,
                 threads: int | None, as_json: bool) -> None:
    """Propose an edit of FILE and print it as a unified diff; --apply writes it."""
    from cromwell_lsp import api

    region = _lines_option(lines)
    _check_region(file, region)
    try:
        with _Progress(f"editing {file.name}") as progress:
            proposal = api.propose_edit(file, instruction, lines=region, root=root,
                                        model=model_path, threads=threads,
                                        max_new_tokens=max_tokens, on_piece=progress.piece)
        if do_apply:
            api.apply_patch(proposal.diff, proposal.root, backup=backup,
                            expected={proposal.path: proposal.old_hash})
    except Exception as err:
        raise _door_error(err) from err
    if as_json:
        click.echo(json.dumps({**proposal.to_json(), "applied": do_apply}))
    else:
        click.echo(proposal.diff, nl=False)


@click.command("complete")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--line", required=True, type=click.IntRange(min=1), help="Cursor line (1-based).")
@click.option("--column", required=True, type=click.IntRange(min=1),
              help="Cursor column (1-based, in characters).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Workspace folder for related files.")
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most tokens of the completion.")
@_with_model_options
def complete_command(file: Path, line: int, column: int, root: Path | None, max_tokens: int,
                     model_path: str | None, threads: int | None, as_json: bool) -> None:
    """Print the code the model would insert at a cursor position of FILE."""
    from cromwell_lsp import api

    _check_cursor(file, line, column)
    try:
        with _Progress(f"completing {file.name}") as progress:
            text = api.complete(file, line - 1, column - 1, root=root, model=model_path,
                                threads=threads, max_tokens=max_tokens, on_piece=progress.piece)
    except Exception as err:
        raise _door_error(err) from err
    if as_json:
        click.echo(json.dumps({"path": str(file), "line": line, "column": column, "text": text}))
    else:
        click.echo(text)


@click.command("screenshot")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: print the code). Never overwrites a file.")
@click.option("--language", default=".py", show_default=True,
              help="File suffix of the code to write when -o is not given.")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(min=1),
              help="Most tokens of the generated code.")
@click.option("--raw", is_flag=True,
              help="Print what the code reader reads in the picture, without the model.")
@_with_model_options
def screenshot_command(image: Path, output: Path | None, language: str, max_tokens: int,
                       raw: bool, model_path: str | None, threads: int | None,
                       as_json: bool) -> None:
    """Code that reproduces a screenshot IMAGE: the code reader's transcript, mended by the
    model where it stays close to it (--raw: the transcript alone)."""
    from cromwell_lsp import api
    from cromwell_lsp.patches import atomic_write

    if output is not None and output.exists():
        raise click.ClickException(f"{output} exists: choose a new file")
    suffix = output.suffix if output is not None and output.suffix else language
    try:
        with _Progress(f"reading {image.name}") as progress:
            generated = api.screenshot_to_code(
                image, target=output.name if output else None,
                root=output.resolve().parent if output else None,
                language_suffix=suffix if suffix.startswith(".") else f".{suffix}",
                model=model_path, threads=threads, max_new_tokens=max_tokens,
                on_piece=progress.piece, raw=raw)
    except Exception as err:
        raise _door_error(err) from err
    if output is not None:
        atomic_write(output, generated.code)
    if as_json:
        click.echo(json.dumps({"path": str(output) if output else generated.path,
                               "code": generated.code, "written": output is not None,
                               "transcript": generated.transcript,
                               "source": generated.source}))
    elif output is not None:
        click.echo(str(output))
    else:
        click.echo(generated.code, nl=False)


@click.command("apply")
@click.argument("patch", type=click.File("r", encoding="utf-8"))
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The working tree the paths are in.")
@click.option("--dry-run", is_flag=True, help="Check every hunk; write nothing.")
@click.option("--backup", is_flag=True, help="Keep each original as FILE.orig.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for programs.")
def apply_command(patch, root: Path, dry_run: bool, backup: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Apply the unified diff PATCH (a file, or - for stdin) to the working tree, all or
    nothing: every hunk is checked before any file is written."""
    from cromwell_lsp import api

    try:
        checked = api.apply_patch(patch.read(), root, dry_run=dry_run, backup=backup)
    except Exception as err:
        raise _door_error(err) from err
    if as_json:
        click.echo(json.dumps({"applied": not dry_run, "files": checked.summary()}))
        return
    verb = "would change" if dry_run else "changed"
    for row in checked.summary():
        click.echo(f"{verb} {row['path']} ({row['change']}, +{row['added']} -{row['removed']})")

