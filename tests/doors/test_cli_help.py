"""Every door of the `cromwell` command tree explains itself: each option has help text,
each argument is named in its command's help, each group lists its commands; `cromwell
train`, whose options come from argparse, the same."""

from __future__ import annotations

import argparse

import click
import pytest

from cromwell_cli.main import main
from engine.train.__main__ import build_parser as train_parser
from engine.train.finetune import build_parser as finetune_parser


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """(`cromwell a b`, command) for every command and group under `group`, itself included."""
    found = [(" ".join(("cromwell", *path)), group)]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append((" ".join(("cromwell", *path, name)), command))
    return found


TREE = commands(main)


@pytest.mark.parametrize(("name", "command"), TREE, ids=[name for name, _ in TREE])
def test_every_option_and_argument_is_explained(name: str, command: click.Command) -> None:
    ctx = click.Context(command, info_name=name)
    text = command.get_help(ctx)
    missing = [] if (command.help or "").strip() else ["a description"]
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and not (param.help or "").strip():
            missing.append(param.opts[0])
        elif isinstance(param, click.Argument) and param.human_readable_name not in (
                command.help or ""):
            missing.append(param.human_readable_name)
    if isinstance(command, click.Group):
        missing += [f"the command {sub}" for sub in command.list_commands(ctx)
                    if f"  {sub} " not in text and f"  {sub}\n" not in text]
    assert not missing, f"{name} does not explain {', '.join(missing)}"


@pytest.mark.parametrize("parser", [train_parser(), finetune_parser()],
                         ids=["train", "train finetune"])
def test_train_options_are_explained(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        assert (action.help or "").strip(), f"{parser.prog} {action.option_strings} has no help"


def test_train_lists_its_commands() -> None:
    parser = train_parser()
    text = parser.format_help()
    assert "cromwell train plot" in text and "cromwell train finetune" in text
