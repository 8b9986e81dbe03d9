"""Sweeps orphaned artifact objects in the background of every API process
(``AIHUB_ARTIFACT_SWEEP_INTERVAL`` seconds apart; the first sweep a minute after start, or
sooner with a shorter interval). See ``ArtifactService.sweep``."""

from __future__ import annotations

import logging

from aihub.services.background import PeriodicTask
from aihub.services.model_artifacts import ArtifactService

log = logging.getLogger("aihub.registry")


class ArtifactSweeper(PeriodicTask):
    name = "aihub-artifact-sweeper"

    def __init__(self, artifacts: ArtifactService, interval: float) -> None:
        super().__init__(interval, first_delay=min(60.0, interval))
        self.artifacts = artifacts

    def run_once(self) -> None:
        report = self.artifacts.sweep()
        if report.removed or report.partial_uploads or report.failed:
            log.info("artifact sweep: removed %d orphaned object(s) and %d unfinished "
                     "upload(s); %d could not be removed", len(report.removed),
                     report.partial_uploads, len(report.failed))
