"""Liveness, readiness and the metrics route: `/healthz`, `/readyz`, `/metrics`."""

from facetoface.health.endpoints import router
from facetoface.health.repository import PAST_MAX_GRACE_SECONDS
from facetoface.health.service import readiness
from facetoface.health.tavus import TavusHealth

__all__ = ["PAST_MAX_GRACE_SECONDS", "TavusHealth", "readiness", "router"]
