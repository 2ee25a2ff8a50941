"""Mean Teacher (Tarvainen & Valpola 2017), as in SSL4MIS's `train_mean_teacher_2D.py`.

The step is the teacher-student base's (`teacher_student`) without extra terms: noisy student
and EMA-teacher views of the unlabelled frames, mean squared difference of their probabilities,
weighted by the ramped-up consistency weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from .teacher_student import TeacherStudentConfig, TeacherStudentMethod


@dataclass(frozen=True)
class MeanTeacherConfig(TeacherStudentConfig):
    """The input noise of the two views (the base's options)."""


class MeanTeacher(TeacherStudentMethod):
    name = "mean-teacher"
    Config = MeanTeacherConfig
