"""`churnops promote [--version N]`: release a candidate as `champion`, only after a passed gate."""

from __future__ import annotations

import argparse
import sys

from churnops.release import registry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops promote", description=__doc__)
    parser.add_argument("--version", help="candidate version (default: the one in models/)")
    args = parser.parse_args(argv)
    try:
        version = registry.promote(args.version)
    except registry.RegistryError as exc:
        sys.exit(f"promote: {exc}")
    print(f"promote: {registry.REGISTERED_MODEL} version {version} is now {registry.CHAMPION}")


if __name__ == "__main__":
    main()
