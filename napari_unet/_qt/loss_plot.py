"""A tiny loss-curve widget (Qt only, no plotting library): the losses as a line and, when the
user checked regions, the validation Dice and F1 on them (0-1, right axis) as dotted lines."""

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
        self.validation: list[tuple[int, float, float]] = []  # (step, Dice, F1)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("training loss (log scale)")

    def set_validation(self, scores) -> None:
        """scores: [(step, dice, f1)], drawn against the step axis of the losses."""
        self.validation = [s for s in scores if all(math.isfinite(v) for v in s)]
        self.update()

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
        if self.validation:
            self._draw_validation(painter, left, top, w, h, n)

    def _draw_validation(self, painter, left, top, w, h, n) -> None:
        """Dice (green) and F1 (orange) on the checked regions, 0 at the x axis and 1 at the top."""
        step, dice, f1 = self.validation[-1]
        for k, colour in ((1, QColor(90, 220, 90)), (2, QColor(255, 170, 40))):
            pts = [QPointF(left + w * min(max(s[0] - 1, 0), n) / max(n, 1), top + h * (1 - s[k]))
                   for s in self.validation]
            painter.setPen(QPen(colour, 1.5, Qt.DotLine))
            painter.drawPolyline(QPolygonF(pts)) if len(pts) > 1 else painter.drawEllipse(pts[0], 2, 2)
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(left + 4, top + h - 4, f"checked: Dice {dice:.2f}  F1 {f1:.2f}")
        self.setToolTip("training loss (log scale); dotted: Dice (green) and F1 (orange) on the checked regions "
                        f"(0-1), last at step {step}")
