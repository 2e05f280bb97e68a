"""``tspo train``: a LightningCLI over :class:`TSPOModule` and :class:`TSPODataModule`.

    tspo train fit --config examples/configs/synthetic_needle.yaml
    tspo train fit --config examples/configs/synthetic_needle.yaml --trainer.max_steps 500
    tspo train fit --config examples/configs/synthetic_needle.yaml --run_dir runs/exp2   # a second run
    tspo train fit --config run/config.yaml --ckpt_path run/checkpoints/last.ckpt   # exact resume

Lightning does devices, precision, DDP, checkpoints and logging; the YAML holds every knob. The
trained agent is exported as a ``TSPOSelector`` directory at the end (``export.dirpath``).
"""

from __future__ import annotations

import sys
import warnings
from argparse import ArgumentError

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningCLI

from tspo.training.callbacks import ExportSelector
from tspo.training.config_errors import ConfigError, check_yaml_syntax, config_files, explain_argument_error
from tspo.training.datamodule import TSPODataModule
from tspo.training.module import TSPOModule
from tspo.training.progress import StepProgressBar, quiet_lightning

EXAMPLE = "example: tspo train fit --config examples/configs/synthetic_needle.yaml --trainer.max_steps 500"


class TSPOCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # One encoder for features and agent: the agent's dim is the encoder's.
        parser.link_arguments("data.encoder", "model.encoder")
        parser.add_lightning_class_args(ExportSelector, "export")
        parser.add_argument("--run_dir", type=str | None, default=None,
                            help="the run folder: sets trainer.default_root_dir; logs, checkpoints, the exported "
                                 "selector, and (unless given as paths) data/ and feature_cache/ go inside it")

    def parse_arguments(self, parser, args) -> None:
        # exit_on_error=False: jsonargparse raises instead of printing ~100 usage lines; say the key instead.
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            sub = getattr(parser, "_subcommands_action", None)
            name = next((a for a in (args or []) if not str(a).startswith("-")), None)
            target = sub._name_parser_map.get(name, parser) if sub is not None and name else parser
            try:
                keys = [k for k in target.get_defaults().keys() if k != "config"]
            except Exception:  # the defaults themselves may be what fails; no suggestions then
                keys = []
            raise ConfigError(explain_argument_error(str(err), keys, config_files(args or []))) from None

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except MisconfigurationException as err:  # e.g. trainer.accelerator gpu on a machine without one
            raise ConfigError(f"trainer: {err} (see --trainer.accelerator / --trainer.devices; cpu always works)") from None
        except (ValueError, TypeError) as err:  # a class refused a value from the config
            raise ConfigError(str(err)) from err

    def _instantiate_trainer(self, config: dict, callbacks: list):
        # Our bar unless the config turns the bar off or brings its own.
        has_bar = any(isinstance(c, ProgressBar) for c in [*callbacks, *(config.get("callbacks") or [])])
        if config.get("enable_progress_bar", True) is not False and not has_bar:
            callbacks = [StepProgressBar(), *callbacks]  # first: its bar closes before others print
        return super()._instantiate_trainer(config, callbacks)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("run_dir"):
            config.trainer.default_root_dir = config.run_dir


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tspo train``; ``argv`` as after the subcommand (``["fit", "--config", ...]``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in {"-h", "--help"} or a.startswith("--print_config") for a in argv):
        parser_kwargs = {"prog": "tspo train", "epilog": EXAMPLE}
    else:  # errors as one line (ConfigError) instead of the usage text
        parser_kwargs = {"prog": "tspo train", "epilog": EXAMPLE, "exit_on_error": False}
    try:
        check_yaml_syntax(config_files(argv))
        with quiet_lightning(), warnings.catch_warnings():
            # `tspo train ...` hands over the arguments after the subcommand while sys.argv still holds
            # the whole command line (DDP re-launches need it); Lightning would warn about the pair.
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            TSPOCLI(TSPOModule, TSPODataModule, args=argv, save_config_kwargs={"overwrite": True},
                    parser_kwargs=parser_kwargs)
    except ConfigError as err:
        print(f"tspo train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
