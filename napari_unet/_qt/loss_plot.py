"""A tiny loss-curve widget (Qt only, no plotting library): the last N losses as a line."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget


class LossPlot(QWidget):
    """Draws ``values`` (log-scaled) left to right; call ``set_values`` to refresh."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.values: list[float] = []
        self.setMinimumHeight(60)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("training loss (log scale)")

    def set_values(self, values) -> None:
        self.values = [v for v in values if v > 0 and math.isfinite(v)]
        self.update()

    def paintEvent(self, event):  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), QColor(38, 41, 48))
        if len(self.values) < 2:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignCenter, "loss curve appears while training")
            return
        logs = [math.log10(v) for v in self.values]
        lo, hi = min(logs), max(logs)
        span = max(hi - lo, 1e-6)
        w, h, m = self.width(), self.height(), 6
        n = len(logs) - 1
        pts = [QPointF(m + (w - 2 * m) * i / n, m + (h - 2 * m) * (hi - v) / span) for i, v in enumerate(logs)]
        painter.setPen(QPen(QColor(0, 200, 255), 1.5))
        painter.drawPolyline(QPolygonF(pts))
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(m, h - m, f"{self.values[-1]:.3f}")
