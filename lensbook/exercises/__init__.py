"""Exercises that check themselves: one module of ``check_…`` functions per notebook.

In a notebook, ``from lensbook.exercises import nb01`` then ``nb01.check_first_layer(layer,
traj)``: the check prints ``✓ …`` when the answer satisfies the exercise's invariants and
otherwise says which invariant failed and why (:mod:`lensbook.exercises.core` explains
the student and strict modes). :mod:`lensbook.exercises.student` writes the student
notebooks: the source notebooks with every solution removed and every check kept.
"""

from lensbook.exercises.core import ExerciseNotSolved, strict, student_mode

__all__ = ["ExerciseNotSolved", "strict", "student_mode"]
