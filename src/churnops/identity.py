"""The repository's identity: churnops.yaml, and the files it is rendered into.

churnops.yaml is the one place that says who this repository is (its GitHub name, Git
URL, images, DVC remote and its endpoint, MLflow server, namespaces, hostnames, bot). A few
files must name those values themselves (Argo CD, kustomize, make, DVC read no churnops.yaml);
FIELDS lists every such place. `render` writes the identity into them, changing only the
value (comments, quoting and layout stay byte for byte); `check` lists where they disagree.
`churnops init` writes churnops.yaml and renders it; `churnops identity KEY` prints a value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

IDENTITY_FILE = Path("churnops.yaml")


class IdentityError(ValueError):
    """churnops.yaml, or a rendered file, is not what the identity can work with."""


@dataclasses.dataclass(frozen=True)
class Identity:
    """Every value of churnops.yaml, flat; the names are what `churnops identity` takes."""

    repository: str
    git_url: str
    image_repository: str
    ui_image_repository: str
    dvc_remote_url: str
    dvc_remote_endpoint: str  # an S3-compatible server's URL; "" for AWS S3 or a local path
    mlflow_tracking_uri: str
    staging_namespace: str
    production_namespace: str
    staging_hostname: str
    production_hostname: str
    bot: str
    ct_runner: str  # the runs-on label of continuous training (ct.yml)

    def values(self) -> dict[str, str]:
        return dataclasses.asdict(self)


# churnops.yaml's nested keys, as the flat names above.
NESTED = {
    "namespaces": {"staging": "staging_namespace", "production": "production_namespace"},
    "hostnames": {"staging": "staging_hostname", "production": "production_hostname"},
}
KEYS = [field.name for field in dataclasses.fields(Identity)]
ALIASES = {
    f"{outer}.{inner}": flat for outer, pairs in NESTED.items() for inner, flat in pairs.items()
}

_DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_S3_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_HTTP_URL = r"https?://[^\s/@#?'\"]+(/[^\s@#?'\"]*)?"
RULES: dict[str, tuple[str, str]] = {
    "repository": (r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", "OWNER/NAME"),
    "git_url": (r"(https://|ssh://|git@)[^\s#;'\"]+", "an https://, ssh:// or git@ Git URL"),
    "image_repository": (
        r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+",
        "REGISTRY/PATH in lower case, without a tag or digest",
    ),
    "dvc_remote_url": (
        r"(/|[a-z][a-z0-9+.-]*://)[^\s#;'\"]*",
        "an absolute path or a URL (s3://, gs://, ...) without spaces, quotes, # or ;",
    ),
    "dvc_remote_endpoint": (
        rf"({_HTTP_URL})?",
        "empty (AWS S3) or the http(s):// URL of an S3-compatible server, without credentials",
    ),
    "mlflow_tracking_uri": (
        _HTTP_URL,
        "an http(s):// URL without credentials (the token is a secret, never in Git)",
    ),
    "namespace": (_DNS_LABEL, "a DNS label (lower case, digits, '-', at most 63)"),
    "hostname": (rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", "a DNS name in lower case"),
    "bot": (r"[A-Za-z0-9][A-Za-z0-9-]*\[bot\]", "a GitHub App login, NAME[bot]"),
    "ct_runner": (r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "a runner label: letters, digits, . _ -"),
}
RULE_OF = {
    "ui_image_repository": "image_repository",
    "staging_namespace": "namespace",
    "production_namespace": "namespace",
    "staging_hostname": "hostname",
    "production_hostname": "hostname",
}


CT_HOSTED_RUNNER = "ubuntu-latest"


def default_git_url(repository: str) -> str:
    return f"https://github.com/{repository}.git"


def label(key: str) -> str:
    """How churnops.yaml spells a flat key (namespaces.staging for staging_namespace)."""
    return next((alias for alias, flat in ALIASES.items() if flat == key), key)


def validate(raw: Any, source: Path = IDENTITY_FILE) -> Identity:
    """The Identity in churnops.yaml's parsed mapping; IdentityError in one line if not."""
    if not isinstance(raw, dict):
        raise IdentityError(f"{source}: must be a mapping of keys to values, got {raw!r:.60}")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in NESTED:
            if not isinstance(value, dict) or set(value) != set(NESTED[key]):
                wanted = ", ".join(NESTED[key])
                raise IdentityError(f"{source}: {key} must map exactly {wanted}, got {value!r}")
            flat.update({NESTED[key][inner]: item for inner, item in value.items()})
        elif key in KEYS:
            flat[key] = value
        else:
            known = ", ".join(label(k) for k in KEYS)
            raise IdentityError(f"{source}: unknown key {key!r} (known: {known})")
    if "repository" in flat and "git_url" not in flat:
        flat["git_url"] = default_git_url(str(flat["repository"]))
    flat.setdefault("dvc_remote_endpoint", "")
    flat.setdefault("ct_runner", CT_HOSTED_RUNNER)
    for key in KEYS:
        if key not in flat:
            raise IdentityError(f"{source}: {label(key)} is missing")
        pattern, wanted = RULES[RULE_OF.get(key, key)]
        value = flat[key]
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise IdentityError(f"{source}: {label(key)} must be {wanted}, got {value!r}")
    s3_bucket = re.match(r"s3://([^/]*)", flat["dvc_remote_url"])
    if s3_bucket and not re.fullmatch(_S3_BUCKET, s3_bucket.group(1)):
        raise IdentityError(
            f"{source}: dvc_remote_url must be s3://BUCKET/PREFIX with a bucket name of 3 to 63 "
            f"lower-case letters, digits, '.' and '-', got {flat['dvc_remote_url']!r}"
        )
    if flat["dvc_remote_endpoint"] and not s3_bucket:
        raise IdentityError(f"{source}: dvc_remote_endpoint is only for an s3:// dvc_remote_url")
    if flat["staging_namespace"] == flat["production_namespace"]:
        raise IdentityError(f"{source}: namespaces.staging and namespaces.production must differ")
    return Identity(**flat)


def load(root: Path = Path(".")) -> Identity:
    path = root / IDENTITY_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise IdentityError(
            f"{IDENTITY_FILE}: not found in {root.resolve()}; "
            "run `churnops init --repository OWNER/NAME`"
        ) from None
    try:
        raw = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise IdentityError(f"{IDENTITY_FILE}: not valid YAML: {problem}{where}") from None
    return validate(raw, IDENTITY_FILE)


# --- Rendered fields --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    """One place outside churnops.yaml that names an identity value.

    `location` is a YAML path (`spec.source.repoURL`, `images[name=churnops-service].newName`,
    `spec.destinations[0].namespace`) for .yaml files, the variable of a `NAME ?= value` line
    for make files, and `[section].key` for .dvc/config. `template` is formatted with the
    Identity's values. An `optional` .dvc/config key is absent when its value is empty (DVC
    refuses an S3 endpoint on a local remote).
    """

    path: str
    location: str
    template: str
    optional: bool = False

    def expected(self, identity: Identity) -> str:
        return self.template.format(**identity.values())


def _environment(name: str) -> tuple[Field, ...]:
    """The fields of one environment: its Argo CD Application and its overlay (and Ingresses)."""
    app, overlay = f"k8s/argocd/{name}.yaml", f"k8s/overlays/{name}"
    namespace, hostname = f"{{{name}_namespace}}", f"{{{name}_hostname}}"
    hosts = (
        Field(f"{overlay}/{ingress}", location, hostname)
        for ingress in ("ingress-service.yaml", "ingress-ui.yaml")
        for location in ("spec.tls[0].hosts[0]", "spec.rules[0].host")
    )
    return (
        Field(app, "spec.source.repoURL", "{git_url}"),
        Field(app, "spec.destination.namespace", namespace),
        Field(f"{overlay}/kustomization.yaml", "namespace", namespace),
        Field(
            f"{overlay}/kustomization.yaml",
            "images[name=churnops-service].newName",
            "{image_repository}",
        ),
        Field(
            f"{overlay}/kustomization.yaml",
            "images[name=churnops-ui].newName",
            "{ui_image_repository}",
        ),
        Field(f"{overlay}/namespace.yaml", "metadata.name", namespace),
        *hosts,
    )


DVC_REMOTE = "storage"  # the name of the DVC remote in .dvc/config
# The platform's Applications that read their Helm values from this repository.
PLATFORM_VALUES = (
    "kube-prometheus-stack",
    "prometheus-adapter",
    "ingress-nginx",
    "gha-runner-scale-set",
)


FIELDS: tuple[Field, ...] = (
    Field("k8s/argocd/project.yaml", "spec.sourceRepos[0]", "{git_url}"),
    Field("k8s/argocd/project.yaml", "spec.destinations[0].namespace", "{staging_namespace}"),
    Field("k8s/argocd/project.yaml", "spec.destinations[1].namespace", "{production_namespace}"),
    Field("k8s/argocd/platform-project.yaml", "spec.sourceRepos[0]", "{git_url}"),
    Field("k8s/argocd/platform-apps-project.yaml", "spec.sourceRepos[0]", "{git_url}"),
    Field("k8s/argocd/platform.yaml", "spec.source.repoURL", "{git_url}"),
    *(
        Field(f"k8s/platform/{name}.yaml", "spec.sources[ref=values].repoURL", "{git_url}")
        for name in PLATFORM_VALUES
    ),
    *_environment("staging"),
    *_environment("production"),
    Field(
        "k8s/components/retrain-trigger/deployment.yaml",
        "spec.template.spec.containers[name=trigger].env[name=CHURNOPS_GITHUB_REPOSITORY].value",
        "{repository}",
    ),
    # Only production runs the retrain trigger (its overlay has the component).
    Field(
        "k8s/monitoring/alertmanager.yaml",
        "route.routes[receiver=retrain-trigger].matchers[1]",
        'namespace = "{production_namespace}"',
    ),
    Field(
        "k8s/monitoring/alertmanager.yaml",
        "receivers[name=retrain-trigger].webhook_configs[0].url",
        "http://churnops-retrain-trigger.{production_namespace}.svc:8080/alert",
    ),
    Field(
        "k8s/components/retrain-trigger/alertmanagerconfig.yaml",
        "spec.receivers[name=retrain-trigger].webhookConfigs[0].url",
        "http://churnops-retrain-trigger.{production_namespace}.svc:8080/alert",
    ),
    Field(
        "k8s/platform/values/gha-runner-scale-set.yaml",
        "githubConfigUrl",
        "https://github.com/{repository}",
    ),
    Field(".dvc/config", f"""['remote "{DVC_REMOTE}"'].url""", "{dvc_remote_url}"),
    Field(
        ".dvc/config",
        f"""['remote "{DVC_REMOTE}"'].endpointurl""",
        "{dvc_remote_endpoint}",
        optional=True,
    ),
)

RENDERED_FILES = tuple(dict.fromkeys(field.path for field in FIELDS))


@dataclasses.dataclass(frozen=True)
class Span:
    """Where a field's value stands in its file: line index, and the columns of its text."""

    line: int
    start: int
    end: int
    value: str
    absent: bool = False  # an optional key not in the file; `line` is where it would go


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^=\]]+)=([^\]]+)\]")


def _steps(location: str) -> Iterator[str | int | tuple[str, str]]:
    """`a.b[0].c[name=x]` as "a", "b", 0, "c", ("name", "x")."""
    position = 0
    while position < len(location):
        if location[position] == ".":
            position += 1
        match = _STEP.match(location, position)
        if not match:
            raise IdentityError(f"bad location {location!r} at {location[position:]!r}")
        key, index, field, wanted = match.groups()
        yield key if key is not None else int(index) if index is not None else (field, wanted)
        position = match.end()


def _yaml_span(text: str, location: str, path: str) -> Span:
    node: Any = YAML().load(text)
    parent: Any = None
    step: Any = None
    for step in _steps(location):
        parent = node
        try:
            if isinstance(step, tuple):
                field, wanted = step
                index = next(i for i, item in enumerate(node) if item.get(field) == wanted)
                step, node = index, node[index]
            else:
                node = node[step]
        except (KeyError, IndexError, TypeError, StopIteration, AttributeError):
            raise IdentityError(f"{path}: no {location}") from None
    if not isinstance(node, str):
        raise IdentityError(f"{path}: {location} is not a single-line value")
    line, column = parent.lc.item(step) if isinstance(step, int) else parent.lc.value(step)
    lines = text.splitlines()
    end = _scalar_end(lines[line], column)
    if YAML(typ="safe", pure=True).load(f"v: {lines[line][column:end]}")["v"] != node:
        raise IdentityError(f"{path}: {location} is not a single-line value")
    return Span(line, column, end, node)


def _scalar_end(line: str, start: int) -> int:
    """Where the YAML scalar starting at `start` ends (its closing quote, or before a comment)."""
    quote = line[start] if start < len(line) else ""
    if quote in ("'", '"'):
        position = start + 1
        while position < len(line):
            if quote == '"' and line[position] == "\\":
                position += 2
                continue
            if line[position] == quote:
                if quote == "'" and line[position + 1 : position + 2] == "'":
                    position += 2
                    continue
                return position + 1
            position += 1
        return len(line)
    comment = re.search(r"\s#", line[start:])
    return start + comment.start() if comment else len(line.rstrip())


def _yaml_text(old: str, value: str) -> str:
    """`value` as a YAML scalar written the way `old` was (plain, '...' or "...")."""
    if old.startswith("'"):
        return "'" + value.replace("'", "''") + "'"
    if not old.startswith('"'):
        try:
            plain_ok = YAML(typ="safe", pure=True).load(f"v: {value}")["v"] == value
        except YAMLError:
            plain_ok = False
        if plain_ok and "#" not in value:
            return value
    return json.dumps(value)


def _line_span(text: str, field: Field) -> Span:
    """A `NAME ?= value` make line, or `key = value` under `[section]` for .dvc/config."""
    location, path = field.location, field.path
    lines = text.splitlines()
    if path.endswith(".mk"):
        pattern = re.compile(rf"^{re.escape(location)}\s*[?:]?=\s*")
        candidates = range(len(lines))
    else:
        section, _, key = location.rpartition(".")
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=\s*")
        header = next((i for i, line in enumerate(lines) if line.strip() == section), None)
        if header is None:
            raise IdentityError(f"{path}: no section {section}")
        following = (i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("["))
        candidates = range(header + 1, next(following, len(lines)))
    for index in candidates:
        match = pattern.match(lines[index])
        if match:
            end = len(lines[index].split(" #")[0].rstrip())
            return Span(index, match.end(), end, lines[index][match.end() : end])
    if field.optional:
        return Span(candidates.start, 0, 0, "", absent=True)
    raise IdentityError(f"{path}: no {location}")


def _span(text: str, field: Field) -> Span:
    if field.path.endswith((".yaml", ".yml")):
        return _yaml_span(text, field.location, field.path)
    return _line_span(text, field)


def _read(root: Path, path: str) -> str:
    try:
        return (root / path).read_bytes().decode()  # as it is: no newline translation
    except OSError as exc:
        raise IdentityError(f"{path}: cannot be read ({exc.strerror})") from None


def _replaced(text: str, field: Field, span: Span, wanted: str) -> str:
    """`text` with the field's value at `span` replaced by `wanted` (an optional key's line
    added or removed)."""
    lines = text.splitlines(keepends=True)
    if field.optional and not (span.value and wanted):
        key = field.location.rpartition(".")[2]
        ending = lines[span.line - 1][len(lines[span.line - 1].rstrip("\r\n")) :] or "\n"
        added = [f"    {key} = {wanted}{ending}"] if wanted else []
        lines[span.line : span.line + (not span.absent)] = added
        return "".join(lines)
    old = lines[span.line][span.start : span.end]
    new = _yaml_text(old, wanted) if field.path.endswith((".yaml", ".yml")) else wanted
    lines[span.line] = lines[span.line][: span.start] + new + lines[span.line][span.end :]
    return "".join(lines)


@dataclasses.dataclass(frozen=True)
class Mismatch:
    field: Field
    found: str
    expected: str

    def __str__(self) -> str:
        return (
            f"{self.field.path}: {self.field.location} is {self.found!r}, "
            f"churnops.yaml says {self.expected!r}"
        )


def check(
    identity: Identity, root: Path = Path("."), fields: tuple[Field, ...] = FIELDS
) -> list[Mismatch]:
    """Every rendered field whose value is not the identity's; empty when all agree."""
    mismatches = []
    for field in fields:
        found = _span(_read(root, field.path), field).value
        if found != field.expected(identity):
            mismatches.append(Mismatch(field, found, field.expected(identity)))
    return mismatches


def render(
    identity: Identity, root: Path = Path("."), fields: tuple[Field, ...] = FIELDS
) -> list[Field]:
    """Write the identity into every field; the fields that changed. Only values change."""
    changed = []
    for path in dict.fromkeys(field.path for field in fields):
        text = original = _read(root, path)
        for field in (f for f in fields if f.path == path):
            span = _span(text, field)
            wanted = field.expected(identity)
            if span.value == wanted:
                continue
            text = _replaced(text, field, span, wanted)
            if _span(text, field).value != wanted:
                raise IdentityError(f"{path}: {field.location} cannot hold {wanted!r}")
            changed.append(field)
        if text != original:
            (root / path).write_bytes(text.encode())
    return changed


# --- churnops.yaml -----------------------------------------------------------------------------

TEMPLATE = """\
# Who this repository is: the one place a fork changes. `churnops init` writes this file
# and renders it into the files that must name these values themselves (Argo CD, kustomize,
# make, DVC: the table FIELDS in src/churnops/identity.py); `churnops init --check` lists
# any that disagree. Workflows read it with `churnops identity KEY` or `--github-env`.
# Nothing here is a secret: tokens and keys are repository secrets (docs/setup.md).

# The GitHub repository, OWNER/NAME; the Argo CD source and the retrain trigger's target.
repository: {repository}
{git_url_line}
# Where CD pushes the service image, and the UI's image (no tag: the overlays pin digests).
image_repository: {image_repository}
ui_image_repository: {ui_image_repository}

# The DVC remote `storage` (.dvc/config): an absolute path, or s3://BUCKET/PREFIX (docs/setup.md).
dvc_remote_url: {dvc_remote_url}
# An S3-compatible server's endpoint (MinIO, Ceph, ...); empty for AWS S3 or a local path.
dvc_remote_endpoint: {dvc_remote_endpoint}

# The MLflow tracking server (a URL, no credentials: MLFLOW_*_PASSWORD are secrets).
mlflow_tracking_uri: {mlflow_tracking_uri}

# The Kubernetes namespaces Argo CD deploys each overlay into.
namespaces:
  staging: {staging_namespace}
  production: {production_namespace}

# Where each environment is served.
hostnames:
  staging: {staging_hostname}
  production: {production_hostname}

# The GitHub App whose token (GH_TOKEN) pushes release commits and opens bot pull requests.
bot: {bot}

# Where continuous training runs: a GitHub-hosted label, or churnops-ct, the runner scale
# set k8s/platform installs in the cluster (docs/gitops.md), when the data outgrows it.
ct_runner: {ct_runner}
"""


def dump(identity: Identity, explicit_git_url: bool) -> str:
    """churnops.yaml's text for `identity`; git_url is written only when not the default."""
    values = identity.values()
    if explicit_git_url or identity.git_url != default_git_url(identity.repository):
        git_url_line = f"git_url: {identity.git_url}\n"
    else:
        git_url_line = f"# git_url: {identity.git_url}  (the default; set it for another host)\n"
    text = TEMPLATE.format(
        git_url_line=git_url_line, **{k: _yaml_text("", v) for k, v in values.items()}
    )
    validate(YAML(typ="safe", pure=True).load(text))
    return text


# --- churnops identity ------------------------------------------------------------------------


def env_name(key: str) -> str:
    """CHURNOPS_<KEY>, but the tracking URI under the name MLflow itself reads."""
    return "MLFLOW_TRACKING_URI" if key == "mlflow_tracking_uri" else f"CHURNOPS_{key.upper()}"


def env_lines(identity: Identity) -> str:
    return "".join(f"{env_name(key)}={value}\n" for key, value in identity.values().items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="churnops identity",
        description="print a value of churnops.yaml, or write them all to $GITHUB_ENV",
    )
    parser.add_argument("key", nargs="?", help=f"one of: {', '.join(KEYS)}")
    parser.add_argument(
        "--github-env",
        action="store_true",
        help="append CHURNOPS_KEY=VALUE (and MLFLOW_TRACKING_URI) to the file $GITHUB_ENV names",
    )
    args = parser.parse_args(argv)
    try:
        identity = load()
    except IdentityError as exc:
        sys.exit(f"identity: {exc}")
    values = identity.values()
    if args.github_env:
        target = os.environ.get("GITHUB_ENV", "")
        if not target:
            sys.exit("identity: GITHUB_ENV is not set (GitHub Actions sets it for every step)")
        with open(target, "a") as f:
            f.write(env_lines(identity))
        names = ", ".join(env_name(key) for key in values)
        print(f"identity: {len(values)} values appended to $GITHUB_ENV: {names}")
        return
    if args.key is None:
        print(env_lines(identity), end="")
        return
    key = ALIASES.get(args.key, args.key)
    if key not in values:
        sys.exit(f"identity: unknown key {args.key!r} (known: {', '.join(KEYS)})")
    print(values[key])


if __name__ == "__main__":
    main()
