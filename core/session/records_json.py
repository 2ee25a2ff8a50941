"""A measurement record as JSON data and back (for the saved session), without loss."""

from __future__ import annotations

import dataclasses
from enum import Enum

from ..biometry import HeadBiometry
from ..ellipse import Ellipse
from ..records import MeasurementRecord
from .calibration import spacing_from_json, spacing_json

_FIELDS = {field.name for field in dataclasses.fields(MeasurementRecord)}


def _plain(value):
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def record_to_json(record: MeasurementRecord) -> dict:
    data = {}
    for name in _FIELDS:
        value = getattr(record, name)
        if name == "spacing":
            value = spacing_json(value)
        elif name in ("ellipse_px", "biometry") and value is not None:
            value = dataclasses.asdict(value)
        data[name] = _plain(value)
    return data


def record_from_json(data: dict) -> MeasurementRecord:
    """Raises KeyError, TypeError or ValueError on data that is not a saved record."""
    values = {name: value for name, value in data.items() if name in _FIELDS}
    values["spacing"] = spacing_from_json(values["spacing"])
    ellipse = values.get("ellipse_px")
    if ellipse is not None:
        values["ellipse_px"] = Ellipse(
            **{k: float(ellipse[k]) for k in ("cx", "cy", "a", "b", "angle")}
        )
    biometry = values.get("biometry")
    if biometry is not None:
        values["biometry"] = HeadBiometry(**biometry)
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return MeasurementRecord(**values)
