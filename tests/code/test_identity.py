"""churnops.yaml is the one place of the repository's identity; `churnops init` renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from churnops import identity as ident
from churnops import init


@pytest.fixture
def copy(repo_root: Path, tmp_path: Path) -> Path:
    """churnops.yaml and every rendered file, as the repository has them."""
    for name in (str(ident.IDENTITY_FILE), *ident.RENDERED_FILES):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo_root / name, tmp_path / name)
    return tmp_path


def texts(root: Path) -> dict[str, str]:
    return {name: (root / name).read_bytes().decode() for name in ident.RENDERED_FILES}


FORK = ["--repository", "Acme/Churn-X", "--mlflow-uri", "https://mlflow.acme.test"]


def test_the_repository_renders_its_own_identity(repo_root: Path) -> None:
    assert ident.check(ident.load(repo_root), repo_root) == []


def test_init_renders_every_field(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = ident.load(copy)
    s3 = [
        "--dvc-remote-url",
        "s3://acme-dvc/churn",
        "--dvc-remote-endpoint",
        "https://s3.acme.test",
    ]
    init.main([*FORK, *s3], root=copy)
    after = ident.load(copy)
    assert after.repository == "Acme/Churn-X"
    assert after.image_repository == "ghcr.io/acme/churn-x-service"
    assert after.staging_namespace == "churn-x-staging"
    assert after.dvc_remote_url == "s3://acme-dvc/churn"
    assert after.dvc_remote_endpoint == "https://s3.acme.test"
    assert ident.check(after, copy) == []
    # Every field moved (none was missed), and no old name is left in a rendered file.
    assert len(ident.check(before, copy)) == len(ident.FIELDS)
    for name, text in texts(copy).items():
        for stale in ("churnops/churnops", "ghcr.io/churnops", "/var/tmp/churnops"):
            assert stale not in text, f"{name} still names {stale}"
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(ident.FIELDS)


def test_init_changes_only_the_values_byte_for_byte(copy: Path) -> None:
    before = texts(copy)
    old = ident.load(copy)
    init.main(FORK, root=copy)
    new = ident.load(copy)
    changed_lines = 0
    for name, text in texts(copy).items():
        old_lines = before[name].splitlines(keepends=True)
        new_lines = text.splitlines(keepends=True)
        assert len(old_lines) == len(new_lines), name
        for old_line, new_line in zip(old_lines, new_lines, strict=True):
            if old_line == new_line:
                continue
            changed_lines += 1
            expected = old_line
            for key, value in sorted(old.values().items(), key=lambda kv: -len(kv[1])):
                pattern = rf"(?<![\w-]){re.escape(value)}(?![\w-])"
                expected = re.sub(pattern, new.values()[key], expected)
            assert new_line == expected, f"{name}: {old_line!r} became {new_line!r}"
    # each field is one line of its own (FORK keeps the empty endpoint: no line)
    assert changed_lines == sum(f.expected(old) != f.expected(new) for f in ident.FIELDS)
    assert changed_lines == len(ident.FIELDS) - 1


def test_a_quoted_value_and_a_trailing_comment_stay(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_bytes(
        b"spec:  # the source\n"
        b'  repoURL: "https://example.invalid/old.git"   # kept\r\n'
        b"  other: x\n"
        b"  list:\n"
        b"    - 'old' # kept too\n"
    )
    fields = (
        ident.Field("app.yaml", "spec.repoURL", "{git_url}"),
        ident.Field("app.yaml", "spec.other", "{repository}: # not a comment"),
        ident.Field("app.yaml", "spec.list[0]", "it's {repository}"),
    )
    identity = ident.validate(raw_identity())
    assert ident.render(identity, tmp_path, fields) == list(fields)
    assert (tmp_path / "app.yaml").read_bytes().decode() == (
        "spec:  # the source\n"
        '  repoURL: "https://github.com/acme/widget.git"   # kept\r\n'
        '  other: "acme/widget: # not a comment"\n'
        "  list:\n"
        "    - 'it''s acme/widget' # kept too\n"
    )
    assert ident.check(identity, tmp_path, fields) == []


def test_the_s3_endpoint_line_comes_and_goes_with_the_endpoint(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = copy / ".dvc/config"
    local = config.read_text()
    assert "endpointurl" not in local  # DVC refuses an endpoint on a local remote
    s3 = ["--dvc-remote-url", "s3://team-dvc/churnops", "--dvc-remote-endpoint", "http://s3.test"]
    init.main(["--repository", "churnops/churnops", *s3], root=copy)
    assert config.read_text() == local.replace(
        "    url = /var/tmp/churnops/dvc-remote\n",
        "    endpointurl = http://s3.test\n    url = s3://team-dvc/churnops\n",
    )
    config.write_text(config.read_text().replace("    endpointurl = http://s3.test\n", ""))
    with pytest.raises(SystemExit) as dirty:
        init.main(["--check"], root=copy)
    assert dirty.value.code == 1
    assert """endpointurl is '', churnops.yaml says 'http://s3.test'""" in capsys.readouterr().out
    init.main([], root=copy)
    assert "endpointurl = http://s3.test" in config.read_text()
    back = ["--dvc-remote-url", "/var/tmp/churnops/dvc-remote", "--dvc-remote-endpoint", ""]
    init.main(["--repository", "churnops/churnops", *back], root=copy)
    assert config.read_text() == local


def test_init_twice_changes_nothing(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init.main(FORK, root=copy)
    first = {**texts(copy), "yaml": (copy / "churnops.yaml").read_text()}
    capsys.readouterr()
    init.main(["--repository", "Acme/Churn-X"], root=copy)  # keeps the MLflow URI it has
    init.main([], root=copy)
    assert {**texts(copy), "yaml": (copy / "churnops.yaml").read_text()} == first
    assert capsys.readouterr().out.count("already match") == 2


def test_init_for_this_repository_writes_what_is_committed(copy: Path, repo_root: Path) -> None:
    (copy / "churnops.yaml").unlink()
    init.main(["--repository", "churnops/churnops"], root=copy)
    assert (copy / "churnops.yaml").read_text() == (repo_root / "churnops.yaml").read_text()
    assert texts(copy) == texts(repo_root)


def test_init_check_catches_a_hand_edit(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as clean:
        init.main(["--check"], root=copy)
    assert clean.value.code == 0
    app = copy / "k8s/argocd/staging.yaml"
    app.write_text(app.read_text().replace("churnops/churnops.git", "someone/else.git"))
    with pytest.raises(SystemExit) as dirty:
        init.main(["--check"], root=copy)
    assert dirty.value.code == 1
    out = capsys.readouterr().out
    assert (
        "k8s/argocd/staging.yaml: spec.source.repoURL is 'https://github.com/someone/else.git'"
        in out
    )
    assert "out of date: k8s/argocd/staging.yaml;" in out


def raw_identity() -> dict[str, object]:
    return {
        "repository": "acme/widget",
        "image_repository": "ghcr.io/acme/widget-service",
        "ui_image_repository": "ghcr.io/acme/widget-ui",
        "dvc_remote_url": "/var/tmp/widget/dvc-remote",
        "mlflow_tracking_uri": "https://mlflow.example.invalid",
        "namespaces": {"staging": "widget-staging", "production": "widget-production"},
        "hostnames": {
            "staging": "widget.staging.example.invalid",
            "production": "widget.example.invalid",
        },
        "bot": "widget-bot[bot]",
    }


def test_git_url_is_derived_unless_given() -> None:
    assert ident.validate(raw_identity()).git_url == "https://github.com/acme/widget.git"
    explicit = {**raw_identity(), "git_url": "git@gitlab.example.invalid:acme/widget.git"}
    assert ident.validate(explicit).git_url == "git@gitlab.example.invalid:acme/widget.git"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"repository": "x"}, "churnops.yaml: repository must be OWNER/NAME, got 'x'"),
        ({"repository": None}, "churnops.yaml: repository must be OWNER/NAME, got None"),
        ({"image_repository": "ghcr.io/acme/w:latest"}, "image_repository must be REGISTRY/PATH"),
        ({"mlflow_tracking_uri": "https://u:p@mlflow.x"}, "mlflow_tracking_uri must be an http(s)"),
        ({"dvc_remote_url": "remote dir"}, "dvc_remote_url must be an absolute path or a URL"),
        ({"dvc_remote_url": "s3://Team_DVC/x"}, "dvc_remote_url must be s3://BUCKET/PREFIX with"),
        ({"dvc_remote_endpoint": "http://s3.test"}, "dvc_remote_endpoint is only for an s3://"),
        (
            {"dvc_remote_url": "s3://team/x", "dvc_remote_endpoint": "http://key:secret@s3.test"},
            "dvc_remote_endpoint must be empty (AWS S3) or the http(s):// URL",
        ),
        ({"namespaces": {"staging": "Widget", "production": "p"}}, "namespaces.staging must be"),
        ({"namespaces": {"staging": "w"}}, "namespaces must map exactly staging, production"),
        ({"namespaces": {"staging": "w", "production": "w"}}, "namespaces.staging and"),
        ({"bot": "widget-bot"}, "bot must be a GitHub App login, NAME[bot], got 'widget-bot'"),
        ({"colour": "blue"}, "churnops.yaml: unknown key 'colour' (known: repository, git_url"),
        ({"hostnames": None}, "hostnames must map exactly staging, production, got None"),
    ],
)
def test_a_bad_config_is_one_line(change: dict[str, object], message: str) -> None:
    with pytest.raises(ident.IdentityError) as error:
        ident.validate({**raw_identity(), **change})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_key_or_a_broken_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ident.IdentityError, match=r"churnops.yaml: not found .*churnops init"):
        ident.load(tmp_path)
    (tmp_path / "churnops.yaml").write_text("repository: [acme\n")
    with pytest.raises(ident.IdentityError, match=r"^churnops.yaml: not valid YAML: .*\(line 2\)$"):
        ident.load(tmp_path)
    (tmp_path / "churnops.yaml").write_text("repository: acme/widget\n")
    with pytest.raises(ident.IdentityError, match=r"^churnops.yaml: image_repository is missing$"):
        ident.load(tmp_path)


def test_a_rendered_file_without_its_field_is_named(copy: Path) -> None:
    config = copy / ".dvc/config"
    config.write_text(config.read_text().replace("url = ", "uri = "))
    with pytest.raises(
        ident.IdentityError, match=r"""^\.dvc/config: no \['remote "storage"'\]\.url$"""
    ):
        ident.check(ident.load(copy), copy)


def test_identity_prints_a_value_and_fills_github_env(
    copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(copy)
    ident.main(["image_repository"])
    ident.main(["namespaces.production"])
    assert capsys.readouterr().out == "ghcr.io/churnops/churnops-service\nchurnops-production\n"
    with pytest.raises(SystemExit, match="unknown key 'nope'"):
        ident.main(["nope"])
    env_file = copy / "github_env"
    env_file.write_text("EARLIER=1\n")
    monkeypatch.setenv("GITHUB_ENV", str(env_file))
    ident.main(["--github-env"])
    lines = env_file.read_text().splitlines()
    assert lines[0] == "EARLIER=1"
    assert "CHURNOPS_IMAGE_REPOSITORY=ghcr.io/churnops/churnops-service" in lines
    assert "CHURNOPS_BOT=churnops-bot[bot]" in lines  # `churnops report --post` posts as it
    assert "MLFLOW_TRACKING_URI=https://mlflow.example.invalid" in lines
    assert "CHURNOPS_STAGING_NAMESPACE=churnops-staging" in lines
    assert len(lines) == 1 + len(ident.KEYS)
    monkeypatch.setenv("GITHUB_ENV", "")
    with pytest.raises(SystemExit, match="GITHUB_ENV is not set"):
        ident.main(["--github-env"])


# --- Nothing else names the repository ----------------------------------------------------------

# Files that may name the identity: the config, what init renders, and tests/ and docs/
# (examples). The workflows read it with `churnops identity --github-env`.
ALLOWED_PREFIXES = ("tests/", "docs/")


def naming(root: Path, files: list[str], identity: ident.Identity) -> list[str]:
    """`file: value` for each file that names the repository, an image or the Git URL."""
    values = [
        identity.repository,
        identity.git_url,
        identity.image_repository,
        identity.ui_image_repository,
    ]
    patterns = [re.compile(rf"(?<![\w.-]){re.escape(value)}(?![\w-])") for value in values]
    found = []
    for name in files:
        path = root / name
        if not path.is_file() or path.is_symlink():
            continue
        text = path.read_bytes().decode(errors="replace")
        found += [f"{name}: {p.pattern}" for p in patterns if p.search(text)]
    return found


def test_only_churnops_yaml_and_the_rendered_files_name_the_repository(repo_root: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    allowed = {str(ident.IDENTITY_FILE), *ident.RENDERED_FILES}
    files = [f for f in listed if f not in allowed and not f.startswith(ALLOWED_PREFIXES)]
    assert len(files) > 50
    offenders = naming(repo_root, files, ident.load(repo_root))
    assert not offenders, "name the identity through churnops.yaml:\n" + "\n".join(offenders)


def test_the_naming_check_sees_a_hard_coded_image(repo_root: Path, tmp_path: Path) -> None:
    identity = ident.load(repo_root)
    (tmp_path / "Makefile").write_text("IMAGE ?= ghcr.io/churnops/churnops-service:latest\n")
    (tmp_path / "other.py").write_text('URL = "https://github.com/churnops/churnops.git"\n')
    (tmp_path / "fine.md").write_text("ghcr.io/churnops/churnops-service-extra, src/churnops/x\n")
    found = naming(tmp_path, ["Makefile", "other.py", "fine.md"], identity)
    assert [line.split(":")[0] for line in found] == ["Makefile", "other.py", "other.py"]
