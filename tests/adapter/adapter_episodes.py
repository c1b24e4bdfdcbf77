"""Helpers for the adapter tests: episodes with advice outcomes, and the pairs they make."""

from __future__ import annotations

from llmrl.messages import AdviceOutcome, EpisodeSummary, TeacherQuery, TrainingPair

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")
KEY_STATE = "Agent sees <key>, holds <nothing>."
DOOR_STATE = "Agent sees <door>, holds <key>."


def outcome(state: str, option: str, done: int, total: int = 2, options=OPTIONS, achieved: str = "") -> AdviceOutcome:
    return AdviceOutcome(state, option, done, total, 1.0, tuple(options), "", achieved=achieved)


def episode(success: bool, *outcomes: AdviceOutcome) -> EpisodeSummary:
    return EpisodeSummary("minigrid", "SimpleDoorKey", success, float(success), 20, tuple(outcomes))


def pair(state: str, plan: str) -> TrainingPair:
    return TrainingPair(TeacherQuery("minigrid", "SimpleDoorKey", state, OPTIONS), plan)
