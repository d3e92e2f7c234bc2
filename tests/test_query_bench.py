"""bench/query.py compares indexes under one load: each pair runs the yardstick and then every index's recommend,
and each index's ratio is its own median over the same yardstick median."""

from __future__ import annotations

from pathlib import Path

from bench import query


def test_cold_alternates_every_index_with_the_yardstick(monkeypatch):
    seconds = {"-c": 1.0, "/idx/a": 2.0, "/idx/b": 3.0}
    ran: list[str] = []

    def fake(command: list[str]) -> tuple[float, int]:
        which = command[1] if command[1] == "-c" else command[-1]
        ran.append(which)
        return seconds[which] + 0.01 * len(ran), 100 + len(ran)

    monkeypatch.setattr(query, "timed_process", fake)
    a, b = query.cold([Path("/idx/a"), Path("/idx/b")], ["x.jpg", "y.jpg", "z.jpg"])

    assert ran == ["-c", "/idx/a", "/idx/b"] * 3
    assert a["yardstick_runs_s"] == b["yardstick_runs_s"] == [1.01, 1.04, 1.07]
    assert a["recommend_runs_s"] == [2.02, 2.05, 2.08]
    assert b["recommend_runs_s"] == [3.03, 3.06, 3.09]
    assert a["ratio"] == round(2.05 / 1.04, 2) and b["ratio"] == round(3.06 / 1.04, 2)
    assert a["recommend_peak_mb"] == 108 and b["recommend_peak_mb"] == 109
    assert a["yardstick_peak_mb"] == b["yardstick_peak_mb"] == 107


def test_cold_recommends_the_cover_of_its_pair(monkeypatch):
    covers: list[str] = []

    def fake(command: list[str]) -> tuple[float, int]:
        if command[1] != "-c":
            covers.append(command[command.index("--cover") + 1])
        return 1.0, 1

    monkeypatch.setattr(query, "timed_process", fake)
    query.cold([Path("/idx/a"), Path("/idx/b")], ["x.jpg", "y.jpg"])
    assert covers == ["x.jpg", "x.jpg", "y.jpg", "y.jpg"]
