"""``svcnet image``: the images pods can run (``ls``) and importing one (``load``)."""

from __future__ import annotations

import click

from svcnet.runtime.images import ImageError, ImageStore


@click.group()
def image() -> None:
    """Images pods can run: built in, or loaded from an archive."""


@image.command("ls")
def image_ls() -> None:
    """List the images a pod can run."""
    try:
        images = ImageStore().all()
    except ImageError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{'IMAGE':<50} {'SOURCE':<8} ID")
    for img in images:
        for ref in img.references:
            click.echo(f"{ref:<50} {'built-in' if img.builtin else 'loaded':<8} {img.id}")


@image.command("load")
@click.argument("archive", type=click.Path(dir_okay=False))
def image_load(archive: str) -> None:
    """Import ARCHIVE (docker save or OCI archive) so pods can run it."""
    try:
        images = ImageStore().load(archive)
    except ImageError as e:
        raise click.ClickException(str(e)) from e
    for img in images:
        for ref in img.references:
            click.echo(f"Loaded image: {ref}")


@image.command("rm")
@click.argument("reference")
def image_rm(reference: str) -> None:
    """Remove a loaded image (built-in images stay)."""
    if not ImageStore().remove(reference):
        raise click.ClickException(f"{reference}: no loaded image by that name")
    click.echo(f"Untagged: {reference}")
