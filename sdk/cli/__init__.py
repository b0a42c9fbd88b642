"""The ``celeriac`` command. Each component contributes its subcommands through the
``celeriac.commands`` entry-point group, loaded only when invoked."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import click


class _EntryPointGroup(click.Group):
    def _eps(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="celeriac.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._eps()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        ep = self._eps().get(cmd_name)
        if ep is not None:
            try:
                command: click.Command = ep.load()
            except ImportError as exc:  # e.g. a component not installed: --help still works
                return _unavailable(cmd_name, exc)
            return command
        return super().get_command(ctx, cmd_name)


def _unavailable(name: str, exc: ImportError) -> click.Command:
    """A stand-in for a command whose module cannot be imported; running it says why."""
    reason = f"the {name} command is unavailable ({exc})"

    def fail() -> None:
        raise click.ClickException(reason)

    return click.Command(
        name,
        callback=fail,
        help=reason,
        short_help=f"(unavailable: {exc})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=_EntryPointGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="celeriac")
def main() -> None:
    """Celeriac: an HTTP task gateway over Redis streams, with pluggable executors."""


__all__ = ["main"]
