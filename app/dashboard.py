"""The Bandit tab: how the bandit has learned which distance recommends best, as plots and a table, all read from
the feedback log in the database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, render_template

from app.bandit_state import BanditReport, bandit_report
from app.db import get_db
from app.plots import epsilon_svg, rewards_svg, usage_svg, values_svg
from app.recommendations import decision_log, epsilon_history
from recommend import DISTANCES

bp = Blueprint("dashboard", __name__)
REWARD_WINDOW = 20


def current_report() -> BanditReport:
    return bandit_report(get_db(), current_app.config["BANDIT_POLICY"], current_app.config["BANDIT_PARAMS"])


def usage_plot() -> bytes:
    report = current_report()
    arms = [arm.arm for arm in report.arms]
    return usage_svg(arms, {a.arm: a.shown for a in report.arms}, {a.arm: a.rated for a in report.arms})


def values_plot() -> bytes:
    report = current_report()
    arms = [arm.arm for arm in report.arms]
    return values_svg(arms, {a.arm: a.value for a in report.arms}, {a.arm: a.rated for a in report.arms})


def rewards_plot() -> bytes:
    arms = list(DISTANCES)  # the policy's arms: no need to rebuild it from the feedback table for their names
    log = decision_log(get_db())
    return rewards_svg(arms, [(decision.arm, decision.reward) for decision in log], window=REWARD_WINDOW)


def epsilon_plot() -> bytes:
    return epsilon_svg(epsilon_history(get_db()))


PLOTS: dict[str, Callable[[], bytes]] = {
    "usage": usage_plot,
    "values": values_plot,
    "rewards": rewards_plot,
    "epsilon": epsilon_plot,
}


@bp.get("/bandit")
def bandit() -> str:
    return render_template("bandit.html", report=current_report(), window=REWARD_WINDOW)


@bp.get("/bandit/<name>.svg")
def plot(name: str) -> Response:
    if name not in PLOTS:
        abort(404, f"there is no bandit plot {name!r}")
    return Response(PLOTS[name](), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})
