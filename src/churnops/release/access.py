"""`churnops mlflow-access`: the tracking server's two identities, least privilege each.

Run once by the server's admin (MLFLOW_TRACKING_USERNAME/PASSWORD of an admin) against
`mlflow server --app-name basic-auth`. It creates the experiment and both registered models
first, so that no other identity becomes their owner by creating them, then:
- the CI/CT identity may create runs and candidate versions, and only read the released
  model: it cannot move `champion`;
- the CD/rollback identity may also copy candidates into the released model and move
  `champion`.
Passwords come from MLFLOW_CI_PASSWORD and MLFLOW_CD_PASSWORD; an existing user keeps its
own. Rerunning it changes nothing that is already right.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from churnops import tracking
from churnops.release import registry

# What each identity may do to each resource (MLflow's READ < EDIT < MANAGE).
GRANTS = {
    "ci": {"experiment": "EDIT", registry.CANDIDATES: "EDIT", registry.REGISTERED_MODEL: "READ"},
    "cd": {"experiment": "EDIT", registry.CANDIDATES: "EDIT", registry.REGISTERED_MODEL: "EDIT"},
}


class AccessError(RuntimeError):
    """The grants could not be made; the message says why."""


def _ensure_resources(client: Any) -> str:
    """Create the experiment and the registered models if missing; the experiment's id."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(tracking.EXPERIMENT)
    )
    for name in (registry.CANDIDATES, registry.REGISTERED_MODEL):
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    return experiment_id


def _ensure_user(auth: Any, username: str, password_variable: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        auth.get_user(username)
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    password = os.environ.get(password_variable, "")
    if not password:
        raise AccessError(f"user {username} does not exist: set {password_variable} to create it")
    auth.create_user(username, password)


def _set_permission(auth: Any, username: str, kind: str, resource_id: str, permission: str) -> None:
    """Grant, or replace a different grant made before."""
    from mlflow.exceptions import MlflowException

    try:
        auth.grant_user_permission(username, kind, resource_id, permission)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        if auth.get_user_permission(username, kind, resource_id).permission != permission:
            auth.revoke_user_permission(username, kind, resource_id)
            auth.grant_user_permission(username, kind, resource_id, permission)


def grant(users: dict[str, str]) -> list[str]:
    """Give each identity ("ci", "cd" -> username) its GRANTS; one line per grant made."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    uri = tracking.tracking_uri()
    auth = get_app_client("basic-auth", tracking_uri=uri)
    try:
        experiment_id = _ensure_resources(MlflowClient(uri))
        done = []
        for identity, username in users.items():
            _ensure_user(auth, username, f"MLFLOW_{identity.upper()}_PASSWORD")
            for resource, permission in GRANTS[identity].items():
                kind, resource_id = (
                    ("experiment", experiment_id)
                    if resource == "experiment"
                    else ("registered_model", resource)
                )
                _set_permission(auth, username, kind, resource_id, permission)
                done.append(f"{username}: {permission} on {kind} {resource}")
    except MlflowException as exc:
        raise AccessError(f"{uri} refused ({exc.error_code}): {exc.message}") from None
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops mlflow-access", description=__doc__)
    parser.add_argument("--ci-user", default="churnops-ci", help="the identity CI and CT use")
    parser.add_argument("--cd-user", default="churnops-cd", help="the identity CD and rollback use")
    args = parser.parse_args(argv)
    try:
        lines = grant({"ci": args.ci_user, "cd": args.cd_user})
    except AccessError as exc:
        sys.exit(f"mlflow-access: {exc}")
    print("\n".join(f"mlflow-access: {line}" for line in lines))


if __name__ == "__main__":
    main()
