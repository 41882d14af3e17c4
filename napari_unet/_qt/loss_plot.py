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
        self.setMinimumHeight(90)
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
        metrics = painter.fontMetrics()
        left = metrics.horizontalAdvance("0.000") + 8  # room for the loss labels
        top, bottom, right = metrics.height(), metrics.height() + 4, 6
        w, h = self.width() - left - right, self.height() - top - bottom
        n = len(logs) - 1
        pts = [QPointF(left + w * i / n, top + h * (hi - v) / span) for i, v in enumerate(logs)]
        axis = QColor(120, 120, 130)
        painter.setPen(axis)
        painter.drawLine(left, top, left, top + h)  # y axis
        painter.drawLine(left, top + h, left + w, top + h)  # x axis
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(2, top + metrics.ascent() // 2, f"{10 ** hi:.3f}")
        painter.drawText(2, top + h, f"{10 ** lo:.3f}")
        painter.drawText(left, self.height() - 2, "step 1")
        last = f"{len(self.values)}"
        painter.drawText(left + w - metrics.horizontalAdvance(last), self.height() - 2, last)
        title = f"loss (log scale): {self.values[-1]:.3f}"
        painter.drawText(left + w - metrics.horizontalAdvance(title), metrics.ascent(), title)
        painter.setPen(QPen(QColor(0, 200, 255), 1.5))
        painter.drawPolyline(QPolygonF(pts))
