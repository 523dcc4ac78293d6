"""Alertmanager's webhook notification, checked and reduced to what the trigger may use.

Everything in a notification is the sender's choice, so nothing of it goes on unchecked:
an alert's fingerprint must be hex and its start an RFC 3339 time (together they name a
drift episode), and drifting features are kept only if the schema knows them. What comes
out is safe to log, to put in a workflow run's title and in a commit message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from churnops import schema

STATUSES = ("firing", "resolved")
MAX_ALERTS = 100  # Alertmanager groups one alert per namespace here; this bounds the work
_FINGERPRINT = re.compile(r"[0-9a-f]{1,32}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")
EPISODE = re.compile(rf"{_FINGERPRINT.pattern}@{_TIME.pattern}")


class MalformedNotification(ValueError):
    """Not an Alertmanager notification; `reason` is a fixed word for the metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Alert:
    name: str
    firing: bool
    episode: str  # fingerprint@startsAt: one drift episode
    features: tuple[str, ...]


@dataclass(frozen=True)
class Notification:
    status: str  # firing, resolved or other
    alerts: tuple[Alert, ...]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedNotification("not_a_notification", f"{where} must be a JSON object")
    return value


def known_features(texts: Iterable[Any]) -> tuple[str, ...]:
    """Feature names the schema knows, from "a,b", "a b" or one name; the rest is dropped."""
    names: set[str] = set()
    for text in texts:
        if isinstance(text, str):
            names.update(n for n in text.replace(",", " ").split() if n in schema.BY_NAME)
    return tuple(sorted(names))


def _alert(value: Any, index: int) -> Alert:
    alert = _mapping(value, f"alerts[{index}]")
    labels = _mapping(alert.get("labels", {}), f"alerts[{index}].labels")
    annotations = _mapping(alert.get("annotations", {}), f"alerts[{index}].annotations")
    fingerprint, starts = alert.get("fingerprint"), alert.get("startsAt")
    if not (isinstance(fingerprint, str) and _FINGERPRINT.fullmatch(fingerprint)):
        raise MalformedNotification("not_a_notification", f"alerts[{index}].fingerprint: not hex")
    if not (isinstance(starts, str) and _TIME.fullmatch(starts)):
        raise MalformedNotification("not_a_notification", f"alerts[{index}].startsAt: not a time")
    name = labels.get("alertname")
    return Alert(
        name=name if isinstance(name, str) else "",
        firing=alert.get("status") == "firing",
        episode=f"{fingerprint}@{starts}",
        features=known_features(
            source.get(key) for source in (labels, annotations) for key in ("feature", "features")
        ),
    )


def parse(document: Any) -> Notification:
    """The checked notification, or MalformedNotification saying what is wrong."""
    notification = _mapping(document, "the body")
    alerts = notification.get("alerts")
    if not isinstance(alerts, list):
        raise MalformedNotification("not_a_notification", "alerts must be a list")
    if len(alerts) > MAX_ALERTS:
        raise MalformedNotification("too_large", f"at most {MAX_ALERTS} alerts")
    status = notification.get("status")
    return Notification(
        status=status if status in STATUSES else "other",
        alerts=tuple(_alert(alert, i) for i, alert in enumerate(alerts)),
    )
