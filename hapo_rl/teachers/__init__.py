"""Scripted teachers: the protocol and quality knobs (``base``), the MiniGrid planner
(``minigrid``) and ``load_teacher``, which picks the teacher for an env id."""

from hapo_rl.teachers.base import NoisyTeacher, Teacher, covered
from hapo_rl.teachers.registry import load_teacher

__all__ = ["NoisyTeacher", "Teacher", "covered", "load_teacher"]
