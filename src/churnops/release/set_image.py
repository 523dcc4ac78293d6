"""`churnops set-image`: write a new image digest into an overlay, the one line a release moves.

Only the `digest:` line of one entry under `images:` in k8s/overlays/NAME/kustomization.yaml
changes (`churnops-service`, or with `--image churnops-ui` the UI's); comments and layout
stay byte for byte, so a release or a rollback is a one-line Git diff. The model version
that the service image serves is tagged with the digest in the MLflow registry, which is how
a rollback finds it again (the UI's image serves no model: it is not tagged).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ruamel.yaml import YAML

IMAGE_NAME = "churnops-service"
UI_IMAGE_NAME = "churnops-ui"
OVERLAYS_DIR = Path("k8s/overlays")
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


class OverlayError(ValueError):
    """The overlay or the digest is not what a release can work with."""


def kustomization(overlay: str, overlays_dir: Path = OVERLAYS_DIR) -> Path:
    return overlays_dir / overlay / "kustomization.yaml"


def _digest_line(text: str, path: Path, image: str) -> int:
    """Index of the line holding `image`'s digest."""
    document = YAML().load(text) or {}
    for entry in document.get("images") or []:
        if entry.get("name") == image:
            if "digest" not in entry:
                raise OverlayError(f"{path}: the {image} image has no `digest:` line")
            return entry.lc.value("digest")[0]
    raise OverlayError(f"{path}: no `images:` entry named {image}")


def set_digest(path: Path, digest: str, image: str = IMAGE_NAME) -> bool:
    """Write `digest` into the overlay's entry for `image`; whether the file changed."""
    if not DIGEST_PATTERN.fullmatch(digest):
        raise OverlayError(f"{digest!r} is not an image digest (sha256:<64 lowercase hex>)")
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    index = _digest_line(text, path, image)
    key, _, value = lines[index].partition("digest:")
    # Keep the quoting, any trailing comment and the line ending; replace only the hash.
    new_value, count = DIGEST_PATTERN.subn(digest, value, count=1)
    if count == 0:
        raise OverlayError(f"{path}: the {image} digest is not sha256:<64 hex>")
    lines[index] = f"{key}digest:{new_value}"
    updated = "".join(lines)
    if updated == text:
        return False
    path.write_text(updated)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops set-image", description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", required=True, help="k8s/overlays/NAME (staging, production)")
    parser.add_argument("--digest", required=True, help="sha256:<64 hex> of the pushed image")
    parser.add_argument(
        "--image", choices=(IMAGE_NAME, UI_IMAGE_NAME), default=IMAGE_NAME, help="which image"
    )
    parser.add_argument(
        "--version", help="MLflow model version to tag (default: the one in models/model_card.json)"
    )
    parser.add_argument("--no-tag", action="store_true", help="edit the overlay only")
    args = parser.parse_args(argv)
    path = kustomization(args.overlay)
    try:
        changed = set_digest(path, args.digest, args.image)
    except (OverlayError, OSError) as exc:
        sys.exit(f"set-image: {exc}")
    deploys = "now deploys" if changed else "already deploys"
    print(f"set-image: {path} {deploys} {args.image}@{args.digest}")
    if args.image == IMAGE_NAME and not args.no_tag:
        from churnops.release import registry

        try:
            version = registry.tag_image(args.digest, args.version)
        except registry.RegistryError as exc:
            sys.exit(f"set-image: the overlay is written, but tagging failed: {exc}")
        print(f"set-image: model version {version} tagged image_digest={args.digest}")


if __name__ == "__main__":
    main()
