"""The simulators' commands, added to `tillsync` through the `tillsync.commands` entry points:
`tillsync sim shopify|sitoo` and `tillsync demo`."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import click

from tillsync.schemas.settings import CONFIG_ENV, ConfigError, load_settings

# the repo's demo config: the simulators' own credentials
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.toml"


class _LazyGroup(click.Group):
    """A group whose subcommands load only when used: importing a simulator pulls in the whole
    Shopify schema, and `tillsync sim --help` should not."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, _, attr = self._lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_LazyGroup,
    lazy={
        "shopify": "tillsync_sim.shopify.cli:command",
        "sitoo": "tillsync_sim.sitoo.cli:command",
    },
)
def sim() -> None:
    """Simulators of Shopify and Sitoo that speak their real wire formats."""


@click.command()
@click.option("--stores", default=5, show_default=True, help="stores in the network")
@click.option("--skus", default=1000, show_default=True, help="SKUs in every store")
@click.option("--actions", default=3_000, show_default=True, help="store and online actions")
@click.option("--rate", default=50.0, show_default=True, help="actions per second")
@click.option(
    "--plan",
    type=click.Choice(["standard", "advanced", "plus"]),
    default="standard",
    show_default=True,
    help="the simulated shop's Shopify plan: its API cost budget (100/200/1,000 points/s)",
)
@click.option(
    "--work-dir", type=click.Path(path_type=Path), default=Path("var/demo"), show_default=True
)
def demo(stores: int, skus: int, actions: int, rate: float, plan: str, work_dir: Path) -> None:
    """Play a store network on the built-in simulators through a real worker.

    Without TILLSYNC_CONFIG it uses config/demo.toml: the simulators' own credentials.
    """
    from tillsync_sim import demo as demo_mod

    if not os.environ.get(CONFIG_ENV) and DEMO_CONFIG.is_file():
        os.environ[CONFIG_ENV] = str(DEMO_CONFIG)  # the worker it starts inherits it
    try:
        demo_mod.run(
            load_settings(),
            stores=stores,
            skus=skus,
            actions=actions,
            rate=rate,
            work=work_dir,
            plan=plan,
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
