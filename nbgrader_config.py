"""nbgrader configuration for the course (run nbgrader from the repository root)."""

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "attention-from-scratch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.Execute.timeout = 300
