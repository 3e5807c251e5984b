"""Teachers: the protocol and quality knobs (``base``), the MiniGrid planner (``minigrid``), the
MuJoCo controllers (``mujoco``), ``load_teacher`` (``registry``: the built-in teacher for an
env id, or a user's), teacher episodes (``episodes``) and their measurement (``evaluate``)."""

from hapo_rl.teachers.base import NoisyTeacher, Teacher, covered
from hapo_rl.teachers.registry import load_teacher

__all__ = ["NoisyTeacher", "Teacher", "covered", "load_teacher"]
