"""What the verbs that read a training config share (train, data inspect, estimate): the
`--trust-remote-code` flag, and loading the config so that model code from a hub or a model folder
runs only when the person running the command asks for it on that command."""

from __future__ import annotations

import argparse

FLAG_HELP = "run the model's own Python code (model.trust_remote_code) from its folder or the hub"


def add_trust_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-remote-code", action="store_true", help=FLAG_HELP)


def load_command_config(args: argparse.Namespace):
    """The validated config of ``args.config`` + ``args.overrides``; its model.trust_remote_code is
    true only when asked on this command (the flag, or the override model.trust_remote_code=true):
    a config file that sets it alone is refused in one line."""
    from tuneforge.config.load import load_config
    from tuneforge.config.raw import parse_override
    from tuneforge.models.load import check_remote_code

    cfg = load_config(args.config, args.overrides)
    overridden = [v for k, v in map(parse_override, args.overrides) if k == ["model", "trust_remote_code"]]
    asked = args.trust_remote_code or (bool(overridden) and overridden[-1] is True)
    check_remote_code(cfg.model.trust_remote_code and not overridden, asked, str(args.config))
    cfg.model.trust_remote_code = cfg.model.trust_remote_code and asked
    return cfg
