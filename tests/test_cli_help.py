"""Every subcommand's ``--help``: each flag has help, each default is shown, no flag that does nothing."""

from __future__ import annotations

import argparse

import pytest

from lossnet.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMANDS = _commands()
#: Actions that show no default: flags, and the built-in --help.
_NO_DEFAULT = (argparse._HelpAction, argparse._VersionAction, argparse._StoreTrueAction, argparse._StoreFalseAction)


def _shown(default: object) -> list[str]:
    """The texts a help line must contain to show ``default``."""
    if isinstance(default, dict):
        return [str(k) for k in default]
    if isinstance(default, (list, tuple)):
        return [",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)]
    return [f"{default:g}" if isinstance(default, float) else str(default)]


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"train"}))  # train's flags: tests/train
def test_every_flag_has_help_and_shows_its_default(command: str) -> None:
    for action in COMMANDS[command]._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {name} has no help"
        if isinstance(action, _NO_DEFAULT) or action.default in (None, argparse.SUPPRESS):
            continue
        assert "default" in action.help, f"{command} {name}: the help does not give the default {action.default!r}"
        for text in _shown(action.default):
            assert text in action.help, f"{command} {name}: the help does not show the default {text!r}"


def test_commands_offer_no_flag_that_does_nothing() -> None:
    flags = set(COMMANDS["activations"]._option_string_actions)
    # activations runs no optimisation
    assert not flags & {"--steps", "--optimizer", "--lr", "--levels", "--seed"}
    for command in ("stylize", "invert", "sweep", "report"):
        assert {"--steps", "--optimizer", "--lr", "--levels"} <= set(COMMANDS[command]._option_string_actions)


def test_help_renders_for_every_command(capsys) -> None:
    for command, parser in COMMANDS.items():
        text = parser.format_help()
        assert "usage: lossnet " + command in text


def test_weights_is_one_option_everywhere_defaulting_to_auto_with_the_old_names_as_aliases() -> None:
    with_weights = {name for name, p in COMMANDS.items() if "--weights" in p._option_string_actions}
    assert with_weights == {"compare", "demo", "eval", "train", "stylize", "invert", "activations", "sweep", "report"}
    for command in with_weights:
        action = COMMANDS[command]._option_string_actions["--weights"]
        assert action.option_strings[0] == "--weights"
        assert "auto" in action.help and "default" in action.help
        # train's flags default to the recipe's value (auto for every task), the others to auto itself
        assert action.default == ("auto" if command != "train" else argparse.SUPPRESS)
        for alias in action.option_strings[1:]:
            assert f"alias: {alias}" in action.help
    assert COMMANDS["eval"]._option_string_actions["--feature-weights"].option_strings == ["--weights", "--feature-weights"]
    assert COMMANDS["train"]._option_string_actions["--loss-weights"].option_strings == ["--weights", "--loss-weights"]


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["eval", "--model", "m.safetensors"], "weights", "auto"),
        (["eval", "--model", "m.safetensors", "--feature-weights", "none"], "weights", None),
        (["eval", "--model", "m.safetensors", "--weights", "hed"], "weights", "hed"),
        (["train", "style", "--loss-weights", "hed"], "loss_weights", "hed"),
        (["train", "style", "--weights", "none"], "loss_weights", None),
        (["demo"], "weights", "auto"),
        (["compare", "a.png", "b.png"], "weights", "auto"),
        (["invert", "a.png"], "weights", "auto"),
    ],
)
def test_old_weights_spellings_still_parse(argv: list[str], dest: str, value: object) -> None:
    assert getattr(build_parser().parse_args(argv), dest) == value
