"""Reference implementations, used only by the judges.

A chapter's check module imports its reference *inside* judge functions, never at
module level: the grader's sandboxed student process imports the check modules (to
observe) but can neither import nor read these references.
"""
