"""nbgrader configuration for the course (run nbgrader from the repository root)."""

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "attention-from-scratch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"

# What an exercise cell holds in chapters/: the stub says what to do when it is run unsolved.
# (The grader recognises an unsolved exercise by the NotImplementedError, not by this text.)
STUB = ("# YOUR CODE HERE\n"
        'raise NotImplementedError("not written yet: replace this line with your code for '
        'the exercise above")')
c.ClearSolutions.code_stub = {"python": STUB}
c.Execute.timeout = 300
